//! Sorted runs of index rows for a bulk load into an empty collection.
//!
//! Rows are collected per index in memory up to a byte budget; past it every index's rows
//! are sorted and written to a temporary file as one compact binary run. At the end the
//! runs of each index (and what is still in memory) are merged, so each side table is
//! filled once, in key order: B-tree appends, far cheaper than inserts in document order
//! into tables larger than the page cache, and cheaper than SQLite's staging tables and
//! sorter (measured, see `bulk.rs`).
//!
//! Memory: the budget, plus one read buffer per run during the merge of one index
//! ([`merge_buffer`] keeps all of them together under [`MERGE_BUFFERS`]).

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};

use crate::catalog::entries::{ValueEntry, ValueKey, WordEntry};

/// A row type of a side table, as held in a run (`(doc, row)` pairs).
pub(super) trait RunRow: Sized {
    /// The side table's key order: `(b, k|w, doc)`, without `b` when it is always empty
    /// (`literal_b`: comparing empty Rust strings is slow here, see `index.rs`).
    fn cmp_rows(a: &(i64, Self), b: &(i64, Self), literal_b: bool) -> Ordering;
    /// Appends the row's binary form.
    fn encode(doc: i64, row: &Self, out: &mut impl Write) -> io::Result<()>;
    /// Reads one row written by [`RunRow::encode`].
    fn decode(input: &mut impl Read) -> io::Result<(i64, Self)>;
    /// Estimated heap bytes of a row held in memory, the pair included.
    fn mem_bytes(&self) -> usize;
}

fn put_str(out: &mut impl Write, s: &str) -> io::Result<()> {
    out.write_all(&(s.len() as u32).to_le_bytes())?;
    out.write_all(s.as_bytes())
}

fn get_u8(input: &mut impl Read) -> io::Result<u8> {
    let mut b = [0u8; 1];
    input.read_exact(&mut b)?;
    Ok(b[0])
}

fn get_u64(input: &mut impl Read) -> io::Result<u64> {
    let mut b = [0u8; 8];
    input.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

fn get_str(input: &mut impl Read) -> io::Result<String> {
    let mut len = [0u8; 4];
    input.read_exact(&mut len)?;
    let mut bytes = vec![0u8; u32::from_le_bytes(len) as usize];
    input.read_exact(&mut bytes)?;
    String::from_utf8(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

impl RunRow for ValueEntry {
    fn cmp_rows((da, a): &(i64, Self), (db, b): &(i64, Self), literal_b: bool) -> Ordering {
        if literal_b {
            a.k.cmp(&b.k).then(da.cmp(db))
        } else {
            a.b.cmp(&b.b).then_with(|| a.k.cmp(&b.k)).then(da.cmp(db))
        }
    }

    fn encode(doc: i64, e: &Self, out: &mut impl Write) -> io::Result<()> {
        // One tag byte: the key's type in the low bits, then whether `n` and `t` follow.
        let tag = match e.k {
            ValueKey::Int(_) => 0,
            ValueKey::Real(_) => 1,
            ValueKey::Text(_) => 2,
            ValueKey::Bool(false) => 3,
            ValueKey::Bool(true) => 4,
        } | u8::from(e.n.is_some()) << 3
            | u8::from(e.t.is_some()) << 4;
        out.write_all(&doc.to_le_bytes())?;
        out.write_all(&[tag])?;
        put_str(out, &e.b)?;
        match &e.k {
            ValueKey::Int(i) => out.write_all(&i.to_le_bytes())?,
            ValueKey::Real(f) => out.write_all(&f.to_bits().to_le_bytes())?,
            ValueKey::Text(s) => put_str(out, s)?,
            ValueKey::Bool(_) => {}
        }
        if let Some(n) = e.n {
            out.write_all(&n.to_bits().to_le_bytes())?;
        }
        if let Some(t) = e.t {
            out.write_all(&t.to_le_bytes())?;
        }
        Ok(())
    }

    fn decode(input: &mut impl Read) -> io::Result<(i64, Self)> {
        let doc = get_u64(input)? as i64;
        let tag = get_u8(input)?;
        let b = get_str(input)?;
        let k = match tag & 7 {
            0 => ValueKey::Int(get_u64(input)? as i64),
            1 => ValueKey::Real(f64::from_bits(get_u64(input)?)),
            2 => ValueKey::Text(get_str(input)?),
            3 => ValueKey::Bool(false),
            4 => ValueKey::Bool(true),
            _ => return Err(io::Error::new(io::ErrorKind::InvalidData, "bad run row")),
        };
        let n = if tag & 8 != 0 {
            Some(f64::from_bits(get_u64(input)?))
        } else {
            None
        };
        let t = if tag & 16 != 0 {
            Some(get_u64(input)? as i64)
        } else {
            None
        };
        Ok((doc, ValueEntry { b, k, n, t }))
    }

    fn mem_bytes(&self) -> usize {
        let text = match &self.k {
            ValueKey::Text(s) => s.capacity(),
            _ => 0,
        };
        std::mem::size_of::<(i64, Self)>() + self.b.capacity() + text
    }
}

impl RunRow for WordEntry {
    fn cmp_rows((da, a): &(i64, Self), (db, b): &(i64, Self), literal_b: bool) -> Ordering {
        if literal_b {
            a.w.cmp(&b.w).then(da.cmp(db))
        } else {
            a.cmp(b).then(da.cmp(db))
        }
    }

    fn encode(doc: i64, e: &Self, out: &mut impl Write) -> io::Result<()> {
        out.write_all(&doc.to_le_bytes())?;
        put_str(out, &e.b)?;
        put_str(out, &e.w)
    }

    fn decode(input: &mut impl Read) -> io::Result<(i64, Self)> {
        let doc = get_u64(input)? as i64;
        let b = get_str(input)?;
        let w = get_str(input)?;
        Ok((doc, WordEntry { b, w }))
    }

    fn mem_bytes(&self) -> usize {
        std::mem::size_of::<(i64, Self)>() + self.b.capacity() + self.w.capacity()
    }
}

/// Rows handed to the writer per merged chunk.
pub(super) const CHUNK_ROWS: usize = 4096;

/// Read buffers of all runs of one index during its merge, together.
const MERGE_BUFFERS: usize = 16 << 20;

/// The read buffer of one run when `runs` are merged at once.
fn merge_buffer(runs: usize) -> usize {
    (MERGE_BUFFERS / runs.max(1)).clamp(4 << 10, 256 << 10)
}

/// One spilled run: where it starts in its index's file, and how many rows it holds.
struct Span {
    start: u64,
    rows: u64,
}

/// The rows of one index: in memory, and runs already spilled to its temporary file.
pub(super) struct IndexRun<R> {
    literal_b: bool,
    rows: Vec<(i64, R)>,
    file: Option<File>,
    end: u64,
    spans: Vec<Span>,
}

impl<R: RunRow> IndexRun<R> {
    fn new(literal_b: bool) -> Self {
        IndexRun {
            literal_b,
            rows: Vec::new(),
            file: None,
            end: 0,
            spans: Vec::new(),
        }
    }

    fn sort(&mut self) {
        let literal_b = self.literal_b;
        self.rows
            .sort_unstable_by(|a, b| R::cmp_rows(a, b, literal_b));
    }

    /// Sorts the rows in memory and appends them to the file as one run.
    fn spill(&mut self) -> io::Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        self.sort();
        if self.file.is_none() {
            self.file = Some(tempfile::tempfile()?);
        }
        let file = self.file.as_ref().expect("just created");
        let mut out = CountingWriter {
            inner: BufWriter::with_capacity(256 << 10, file),
            bytes: 0,
        };
        for (doc, row) in &self.rows {
            R::encode(*doc, row, &mut out)?;
        }
        out.flush()?;
        self.spans.push(Span {
            start: self.end,
            rows: self.rows.len() as u64,
        });
        self.end += out.bytes;
        self.rows = Vec::new();
        Ok(())
    }

    /// Hands every row to `sink`, in key order, in chunks of up to [`CHUNK_ROWS`].
    fn drain<E: From<io::Error>>(
        mut self,
        mut sink: impl FnMut(Vec<(i64, R)>) -> Result<(), E>,
    ) -> Result<(), E> {
        self.sort();
        if self.spans.is_empty() {
            let mut rows = self.rows.into_iter().peekable();
            while rows.peek().is_some() {
                sink(rows.by_ref().take(CHUNK_ROWS).collect())?;
            }
            return Ok(());
        }
        let file = self.file.as_ref().expect("spans imply a file");
        let capacity = merge_buffer(self.spans.len() + 1);
        let mut sources: Vec<Source<'_, R>> = self
            .spans
            .iter()
            .map(|span| Source::Spilled {
                reader: BufReader::with_capacity(
                    capacity,
                    SpanReader {
                        file,
                        pos: span.start,
                    },
                ),
                left: span.rows,
            })
            .collect();
        sources.push(Source::Memory(std::mem::take(&mut self.rows).into_iter()));
        let literal_b = self.literal_b;
        let mut heap = BinaryHeap::with_capacity(sources.len());
        for (src, source) in sources.iter_mut().enumerate() {
            if let Some(row) = source.next()? {
                heap.push(Head {
                    row,
                    src,
                    literal_b,
                });
            }
        }
        let mut chunk = Vec::with_capacity(CHUNK_ROWS);
        while let Some(mut head) = heap.peek_mut() {
            let src = head.src;
            let row = match sources[src].next()? {
                Some(next) => std::mem::replace(&mut head.row, next),
                None => std::collections::binary_heap::PeekMut::pop(head).row,
            };
            chunk.push(row);
            if chunk.len() == CHUNK_ROWS {
                sink(std::mem::replace(
                    &mut chunk,
                    Vec::with_capacity(CHUNK_ROWS),
                ))?;
            }
        }
        if !chunk.is_empty() {
            sink(chunk)?;
        }
        Ok(())
    }
}

/// Counts the bytes written through it (the next run's offset).
struct CountingWriter<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reads a file from a position of its own (positional reads), so several runs of one
/// file are read at once.
struct SpanReader<'f> {
    file: &'f File,
    pos: u64,
}

impl Read for SpanReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        #[cfg(unix)]
        let n = std::os::unix::fs::FileExt::read_at(self.file, buf, self.pos)?;
        #[cfg(windows)]
        let n = std::os::windows::fs::FileExt::seek_read(self.file, buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// One input of a merge.
enum Source<'f, R> {
    Spilled {
        reader: BufReader<SpanReader<'f>>,
        left: u64,
    },
    Memory(std::vec::IntoIter<(i64, R)>),
}

impl<R: RunRow> Source<'_, R> {
    fn next(&mut self) -> io::Result<Option<(i64, R)>> {
        match self {
            Source::Spilled { reader, left } => {
                if *left == 0 {
                    return Ok(None);
                }
                *left -= 1;
                R::decode(reader).map(Some)
            }
            Source::Memory(rows) => Ok(rows.next()),
        }
    }
}

/// A merge input's current row; the heap's order is reversed, so it pops the smallest.
struct Head<R> {
    row: (i64, R),
    src: usize,
    literal_b: bool,
}

impl<R: RunRow> Ord for Head<R> {
    fn cmp(&self, other: &Self) -> Ordering {
        R::cmp_rows(&other.row, &self.row, self.literal_b).then(other.src.cmp(&self.src))
    }
}

impl<R: RunRow> PartialOrd for Head<R> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<R: RunRow> PartialEq for Head<R> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<R: RunRow> Eq for Head<R> {}

/// The runs of one index, by kind.
pub(super) enum AnyRun {
    Values(IndexRun<ValueEntry>),
    Words(IndexRun<WordEntry>),
}

/// A merged chunk of one index's rows, in key order.
pub(super) enum Chunk {
    Values(Vec<(i64, ValueEntry)>),
    Words(Vec<(i64, WordEntry)>),
}

/// The rows of every index of a bulk load.
pub(super) struct Runs {
    runs: Vec<AnyRun>,
    /// Estimated bytes held in memory.
    bytes: usize,
    budget: usize,
}

impl Runs {
    /// `indexes` gives, per index, whether it is a words index and whether its `b` is
    /// always empty.
    pub(super) fn new(indexes: impl Iterator<Item = (bool, bool)>, budget: usize) -> Runs {
        Runs {
            runs: indexes
                .map(|(words, literal_b)| {
                    if words {
                        AnyRun::Words(IndexRun::new(literal_b))
                    } else {
                        AnyRun::Values(IndexRun::new(literal_b))
                    }
                })
                .collect(),
            bytes: 0,
            budget,
        }
    }

    /// Adds rows of index `i`.
    pub(super) fn add_values(&mut self, i: usize, rows: &mut Vec<(i64, ValueEntry)>) {
        if let AnyRun::Values(run) = &mut self.runs[i] {
            self.bytes += rows.iter().map(|(_, e)| e.mem_bytes()).sum::<usize>();
            run.rows.append(rows);
        }
    }

    /// Adds rows of words index `i`.
    pub(super) fn add_words(&mut self, i: usize, rows: &mut Vec<(i64, WordEntry)>) {
        if let AnyRun::Words(run) = &mut self.runs[i] {
            self.bytes += rows.iter().map(|(_, e)| e.mem_bytes()).sum::<usize>();
            run.rows.append(rows);
        }
    }

    /// Spills every index's rows when the memory budget is exceeded.
    pub(super) fn enforce_budget(&mut self) -> io::Result<()> {
        if self.bytes <= self.budget {
            return Ok(());
        }
        for run in &mut self.runs {
            match run {
                AnyRun::Values(r) => r.spill()?,
                AnyRun::Words(r) => r.spill()?,
            }
        }
        self.bytes = 0;
        Ok(())
    }

    /// Hands every index's rows to `sink` (index number, chunk), index after index, each
    /// in key order.
    pub(super) fn drain<E: From<io::Error>>(
        self,
        mut sink: impl FnMut(usize, Chunk) -> Result<(), E>,
    ) -> Result<(), E> {
        for (i, run) in self.runs.into_iter().enumerate() {
            match run {
                AnyRun::Values(r) => r.drain(|rows| sink(i, Chunk::Values(rows)))?,
                AnyRun::Words(r) => r.drain(|rows| sink(i, Chunk::Words(rows)))?,
            }
        }
        Ok(())
    }
}
