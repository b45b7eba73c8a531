//! Sorted runs of index rows for a bulk load into an empty collection.
//!
//! Rows are collected per index in memory up to a byte budget; past it every index's rows
//! are sorted and written to a temporary file as one compact binary run. At the end the
//! runs of each index (and what is still in memory) are merged, so each side table is
//! filled once, in key order: B-tree appends, far cheaper than inserts in document order
//! into tables larger than the page cache, and cheaper than SQLite's staging tables and
//! sorter (docs/measurements.md).
//!
//! A value index with few distinct entries (the account flags, subscription flags,
//! countries) holds its rows as [`Postings`] instead: one list of documents per entry.
//! Documents arrive in id order, so the lists are sorted as they grow; nothing is sorted,
//! spilled or merged, and the writer inserts each list with one statement.
//!
//! Memory: the budget, plus one read buffer per run during the merge of one index
//! ([`merge_buffer`] keeps all of them together under [`MERGE_BUFFERS`]), plus postings
//! up to the budget again.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::fs::File;
use std::hash::BuildHasherDefault;
use std::io::{self, BufReader, Read, Write};

use rusqlite::types::Value;

use crate::catalog::entries::{ValueEntry, ValueKey, WordEntry};

/// A row type of a side table, as held in a run (`(doc, row)` pairs).
pub(super) trait RunRow: Sized {
    /// The side table's key order: `(b, k|w, doc)`, without `b` when it is always empty
    /// (`literal_b`: comparing empty Rust strings is slow here, see `index.rs`).
    fn cmp_rows(a: &(i64, Self), b: &(i64, Self), literal_b: bool) -> Ordering;
    /// Appends the row's binary form.
    fn encode(doc: i64, row: &Self, out: &mut Vec<u8>);
    /// Reads one row written by [`RunRow::encode`].
    fn decode(input: &mut impl Read) -> io::Result<(i64, Self)>;
    /// Estimated heap bytes of a row held in memory, the pair included.
    fn mem_bytes(&self) -> usize;
    /// A 128-bit prefix of the row's sort key: rows are ordered by it first, so most
    /// comparisons are one integer comparison instead of a `memcmp`. Its lowest bit says that it holds the whole key (short
    /// strings, booleans), so ties are ordered by `doc` alone; otherwise ties go to
    /// [`RunRow::cmp_rows`]. It is monotone with `cmp_rows` except for oddities (`-0.0`,
    /// NUL bytes), which only cost an out-of-order insert: the combined order is total
    /// either way, since rows with equal prefixes are compared the same way.
    fn prefix(&self, literal_b: bool) -> u128;
    /// A row that owns no memory, left behind when a row is moved out of a run.
    fn placeholder() -> Self;
}

/// The first 16 bytes of `s`, big-endian, zero-padded: ordered like `s` up to ties.
fn text_prefix(s: &str) -> u128 {
    if s.is_empty() {
        // Never hand the dangling pointer of an empty string to `memcpy` (see `index.rs`).
        return 0;
    }
    let mut b = [0u8; 16];
    let n = s.len().min(16);
    b[..n].copy_from_slice(&s.as_bytes()[..n]);
    u128::from_be_bytes(b)
}

/// `f`'s bits, reordered so that unsigned comparison orders them like `f64::total_cmp`.
fn sortable(f: f64) -> u64 {
    let bits = f.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}

/// The leading `bits` bits (at most 126) of a value key's order: its type rank (numbers,
/// text, booleans, as SQLite orders them) in the top two, then the key's leading bits;
/// and whether they hold the whole key.
fn key_bits(k: &ValueKey, bits: u32) -> (u128, bool) {
    let rest = bits - 2;
    let (rank, body, exact) = match k {
        #[allow(clippy::cast_precision_loss)]
        ValueKey::Int(i) => (
            0,
            u128::from(sortable(*i as f64)) << 64 | u128::from(*i as u64 ^ 1 << 63),
            false,
        ),
        ValueKey::Real(f) => (0, u128::from(sortable(*f)) << 64, false),
        ValueKey::Text(s) => (1, text_prefix(s), s.len() * 8 <= rest as usize),
        ValueKey::Bool(b) => (2, u128::from(*b) << 127, true),
    };
    (rank << rest | body >> (128 - rest), exact)
}

/// The prefix of a row whose `b` is always empty: the key's leading 127 bits.
fn literal_prefix((bits, exact): (u128, bool)) -> u128 {
    bits << 1 | u128::from(exact)
}

/// The prefix of a row with a varying `b`: its first 12 bytes, then — when those hold all
/// of `b` — the key's leading 31 bits (else all ones: a longer `b` sorts after its first
/// 12 bytes).
fn bound_prefix(b: &str, key: impl FnOnce() -> (u128, bool)) -> u128 {
    let b96 = text_prefix(b) >> 32 << 32;
    if b.len() > 12 {
        // After every row whose `b` is these 12 bytes alone.
        return b96 | 0xFFFF_FFFE;
    }
    let (bits, exact) = key();
    b96 | bits << 1 | u128::from(exact)
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
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
    let len = u32::from_le_bytes(len) as usize;
    if len == 0 {
        return Ok(String::new());
    }
    let mut bytes = vec![0u8; len];
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

    fn encode(doc: i64, e: &Self, out: &mut Vec<u8>) {
        // One tag byte: the key's type in the low bits, then whether `n` and `t` follow.
        let tag = match e.k {
            ValueKey::Int(_) => 0,
            ValueKey::Real(_) => 1,
            ValueKey::Text(_) => 2,
            ValueKey::Bool(false) => 3,
            ValueKey::Bool(true) => 4,
        } | u8::from(e.n.is_some()) << 3
            | u8::from(e.t.is_some()) << 4;
        out.extend_from_slice(&doc.to_le_bytes());
        out.push(tag);
        put_str(out, &e.b);
        match &e.k {
            ValueKey::Int(i) => out.extend_from_slice(&i.to_le_bytes()),
            ValueKey::Real(f) => out.extend_from_slice(&f.to_bits().to_le_bytes()),
            ValueKey::Text(s) => put_str(out, s),
            ValueKey::Bool(_) => {}
        }
        if let Some(n) = e.n {
            out.extend_from_slice(&n.to_bits().to_le_bytes());
        }
        if let Some(t) = e.t {
            out.extend_from_slice(&t.to_le_bytes());
        }
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

    fn prefix(&self, literal_b: bool) -> u128 {
        if literal_b {
            literal_prefix(key_bits(&self.k, 127))
        } else {
            bound_prefix(&self.b, || key_bits(&self.k, 31))
        }
    }

    fn placeholder() -> Self {
        ValueEntry {
            b: String::new(),
            k: ValueKey::Bool(false),
            n: None,
            t: None,
        }
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

    fn encode(doc: i64, e: &Self, out: &mut Vec<u8>) {
        out.extend_from_slice(&doc.to_le_bytes());
        put_str(out, &e.b);
        put_str(out, &e.w);
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

    fn prefix(&self, literal_b: bool) -> u128 {
        let text = |bits: u32| {
            let exact = self.w.len() * 8 <= bits as usize;
            (text_prefix(&self.w) >> (128 - bits), exact)
        };
        if literal_b {
            literal_prefix(text(127))
        } else {
            bound_prefix(&self.b, || text(31))
        }
    }

    fn placeholder() -> Self {
        WordEntry {
            b: String::new(),
            w: String::new(),
        }
    }
}

/// Most distinct entries a value index holds as [`Postings`]; an index with more (a
/// timestamp, an email) goes back to rows after its first few thousand documents. Room for
/// a composite of two small domains (country × age: ~2,000 pairs).
const MAX_POSTING_ENTRIES: usize = 4096;

/// Documents per chunk of postings handed to the writer (one statement each).
pub(super) const POSTING_CHUNK: usize = 1 << 16;

/// The rows of a value index as one list of documents per distinct entry, in the order
/// the documents were added (ascending).
#[derive(Default)]
pub(super) struct Postings {
    entries: Vec<ValueEntry>,
    docs: Vec<Vec<u32>>,
    /// [`entry_hash`] → position in `entries`.
    slots: HashMap<u64, u32, BuildHasherDefault<PassThrough>>,
    /// Estimated heap bytes.
    bytes: usize,
}

/// A well-mixed hash of a value entry (`n` and `t` follow from `k`). Two entries with one
/// hash only send their index back to rows, so it needs no collision handling.
fn entry_hash(e: &ValueEntry) -> u64 {
    struct Mix(u64);
    impl Mix {
        fn word(&mut self, w: u64) {
            self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
        fn text(&mut self, s: &str) {
            for piece in s.as_bytes().chunks(8) {
                let mut w = [0u8; 8];
                w[..piece.len()].copy_from_slice(piece);
                self.word(u64::from_le_bytes(w));
            }
            self.word(s.len() as u64);
        }
    }
    let mut h = Mix(0);
    h.text(&e.b);
    match &e.k {
        ValueKey::Int(i) => {
            h.word(0);
            h.word(*i as u64);
        }
        ValueKey::Real(f) => {
            h.word(1);
            h.word(f.to_bits());
        }
        ValueKey::Text(s) => {
            h.word(2);
            h.text(s);
        }
        ValueKey::Bool(b) => h.word(3 + u64::from(*b)),
    }
    // The final multiply leaves the low bits, which the table uses, weakly mixed.
    h.0 ^ h.0 >> 29
}

/// `a == b`, without handing `memcmp` the dangling pointers of empty strings (`b` is
/// empty for every pattern without `*`): each such call costs a fault-suppression assist
/// on AVX-512 machines.
fn same_entry(a: &ValueEntry, b: &ValueEntry) -> bool {
    let same_text = |x: &str, y: &str| x.len() == y.len() && (x.is_empty() || x == y);
    let same_key = match (&a.k, &b.k) {
        (ValueKey::Text(x), ValueKey::Text(y)) => same_text(x, y),
        (x, y) => x == y,
    };
    same_key && same_text(&a.b, &b.b) && a.n == b.n && a.t == b.t
}

impl Postings {
    /// Adds a row, or gives it back when postings cannot hold it: a new entry past
    /// [`MAX_POSTING_ENTRIES`], an entry whose hash another holds, a document that is not
    /// after the entry's last one, or an id beyond `u32`.
    fn add(&mut self, doc: i64, e: ValueEntry) -> Result<(), (i64, ValueEntry)> {
        let Ok(id) = u32::try_from(doc) else {
            return Err((doc, e));
        };
        let hash = entry_hash(&e);
        if let Some(&slot) = self.slots.get(&hash) {
            let slot = slot as usize;
            let docs = &mut self.docs[slot];
            if !same_entry(&self.entries[slot], &e) || docs.last().is_some_and(|&last| last > id) {
                return Err((doc, e));
            }
            if docs.last() == Some(&id) {
                // The same row again (an array holding one value twice): one row is stored.
                return Ok(());
            }
            docs.push(id);
        } else {
            if self.entries.len() >= MAX_POSTING_ENTRIES {
                return Err((doc, e));
            }
            self.slots.insert(hash, self.entries.len() as u32);
            self.bytes += e.mem_bytes() + std::mem::size_of::<Vec<u32>>();
            self.entries.push(e);
            self.docs.push(vec![id]);
        }
        self.bytes += std::mem::size_of::<u32>();
        Ok(())
    }

    /// The lists in the side table's key order.
    fn into_sorted(self, literal_b: bool) -> Vec<(ValueEntry, Vec<u32>)> {
        let mut lists: Vec<(ValueEntry, Vec<u32>)> =
            self.entries.into_iter().zip(self.docs).collect();
        if literal_b {
            lists.sort_unstable_by(|(a, _), (b, _)| a.k.cmp(&b.k));
        } else {
            lists.sort_unstable_by(|(a, _), (b, _)| a.b.cmp(&b.b).then_with(|| a.k.cmp(&b.k)));
        }
        lists
    }
}

/// Bytes of encoded rows gathered before each write of a spill.
const SPILL_BUFFER: usize = 256 << 10;

/// Rows handed to the writer per merged chunk.
pub(super) const CHUNK_ROWS: usize = 4096;

/// Read buffers of all runs of one index during its merge, together.
const MERGE_BUFFERS: usize = 16 << 20;

/// The read buffer of one run when `runs` are merged at once.
fn merge_buffer(runs: usize) -> usize {
    (MERGE_BUFFERS / runs.max(1)).clamp(4 << 10, 256 << 10)
}

/// A row with its sort prefix ([`RunRow::prefix`]), as merged.
type Keyed<R> = (u128, (i64, R));

/// The order of keyed rows.
fn cmp_keyed<R: RunRow>(a: &Keyed<R>, b: &Keyed<R>, literal_b: bool) -> Ordering {
    cmp_prefixed(a.0, &a.1, b.0, &b.1, literal_b)
}

/// The order of rows with their prefixes: prefix, then `doc` when the prefix holds the
/// whole key, else the full comparison.
fn cmp_prefixed<R: RunRow>(
    pa: u128,
    a: &(i64, R),
    pb: u128,
    b: &(i64, R),
    literal_b: bool,
) -> Ordering {
    pa.cmp(&pb).then_with(|| {
        if pa & 1 == 1 {
            a.0.cmp(&b.0)
        } else {
            R::cmp_rows(a, b, literal_b)
        }
    })
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
    /// Postings the index gave up (it turned to rows while they held documents), kept as
    /// they are until they are spilled: as rows, every document would carry its own copy
    /// of the entry.
    retired: Vec<Postings>,
    file: Option<File>,
    end: u64,
    spans: Vec<Span>,
}

impl<R: RunRow> IndexRun<R> {
    fn new(literal_b: bool) -> Self {
        IndexRun {
            literal_b,
            rows: Vec::new(),
            retired: Vec::new(),
            file: None,
            end: 0,
            spans: Vec::new(),
        }
    }

    /// The positions of the rows in memory, in key order. A permutation is sorted rather
    /// than the rows themselves: moving ~100-byte rows around was most of the sort's time.
    fn sorted_order(&self) -> Vec<u32> {
        let literal_b = self.literal_b;
        let mut order: Vec<(u128, u32)> = self
            .rows
            .iter()
            .enumerate()
            .map(|(i, (_, row))| (row.prefix(literal_b), i as u32))
            .collect();
        order.sort_unstable_by(|(pa, a), (pb, b)| {
            cmp_prefixed(
                *pa,
                &self.rows[*a as usize],
                *pb,
                &self.rows[*b as usize],
                literal_b,
            )
        });
        order.into_iter().map(|(_, i)| i).collect()
    }

    /// Sorts the rows in memory and appends them to the file as one run.
    fn spill(&mut self) -> io::Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let order = self.sorted_order();
        let rows = std::mem::take(&mut self.rows);
        let written = self.append_run(order.iter().map(|&i| {
            let (doc, row) = &rows[i as usize];
            (*doc, row)
        }));
        // Keeps the allocation: the next run fills it to the same size.
        self.rows = rows;
        self.rows.clear();
        written
    }

    /// Appends rows, already in key order, to the file as one run.
    fn append_run<'r>(&mut self, rows: impl Iterator<Item = (i64, &'r R)>) -> io::Result<()>
    where
        R: 'r,
    {
        if self.file.is_none() {
            self.file = Some(tempfile::tempfile()?);
        }
        let mut file = self.file.as_ref().expect("just created");
        // Encoded into a buffer written in large pieces: through a `BufWriter`, each field
        // was a call and a copy.
        let mut buf = Vec::with_capacity(SPILL_BUFFER + 1024);
        let mut bytes = 0u64;
        let mut count = 0u64;
        for (doc, row) in rows {
            R::encode(doc, row, &mut buf);
            count += 1;
            if buf.len() >= SPILL_BUFFER {
                file.write_all(&buf)?;
                bytes += buf.len() as u64;
                buf.clear();
            }
        }
        if count == 0 {
            return Ok(());
        }
        file.write_all(&buf)?;
        bytes += buf.len() as u64;
        self.spans.push(Span {
            start: self.end,
            rows: count,
        });
        self.end += bytes;
        Ok(())
    }

    /// Hands every row to `sink`, in key order, in chunks of up to [`CHUNK_ROWS`].
    fn drain<E: From<io::Error>>(
        mut self,
        mut sink: impl FnMut(Vec<(i64, R)>) -> Result<(), E>,
    ) -> Result<(), E> {
        let order = self.sorted_order();
        let memory = Source::Memory {
            rows: std::mem::take(&mut self.rows),
            order: order.into_iter(),
            literal_b: self.literal_b,
        };
        if self.spans.is_empty() {
            let Source::Memory {
                mut rows, order, ..
            } = memory
            else {
                unreachable!()
            };
            let mut order = order.peekable();
            while order.peek().is_some() {
                sink(
                    order
                        .by_ref()
                        .take(CHUNK_ROWS)
                        .map(|i| std::mem::replace(&mut rows[i as usize], (0, R::placeholder())))
                        .collect(),
                )?;
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
                literal_b: self.literal_b,
            })
            .collect();
        sources.push(memory);
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
            chunk.push(row.1);
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

impl IndexRun<ValueEntry> {
    /// Appends postings to the file as one run, entry after entry in key order, without
    /// making rows of them.
    fn spill_postings(&mut self, postings: Postings) -> io::Result<()> {
        let lists = postings.into_sorted(self.literal_b);
        self.append_run(
            lists
                .iter()
                .flat_map(|(entry, docs)| docs.iter().map(move |&d| (i64::from(d), entry))),
        )
    }

    /// Spills the retired postings, and `active` when given.
    fn spill_all_postings(&mut self, active: Option<Postings>) -> io::Result<()> {
        for p in std::mem::take(&mut self.retired).into_iter().chain(active) {
            self.spill_postings(p)?;
        }
        Ok(())
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
        literal_b: bool,
    },
    /// The rows still in memory, taken out in `order`.
    Memory {
        rows: Vec<(i64, R)>,
        order: std::vec::IntoIter<u32>,
        literal_b: bool,
    },
}

impl<R: RunRow> Source<'_, R> {
    fn next(&mut self) -> io::Result<Option<Keyed<R>>> {
        match self {
            Source::Spilled {
                reader,
                left,
                literal_b,
            } => {
                if *left == 0 {
                    return Ok(None);
                }
                *left -= 1;
                let (doc, row) = R::decode(reader)?;
                Ok(Some((row.prefix(*literal_b), (doc, row))))
            }
            Source::Memory {
                rows,
                order,
                literal_b,
            } => Ok(order.next().map(|i| {
                let (doc, row) = std::mem::replace(&mut rows[i as usize], (0, R::placeholder()));
                (row.prefix(*literal_b), (doc, row))
            })),
        }
    }
}

/// A merge input's current row; the heap's order is reversed, so it pops the smallest.
struct Head<R> {
    row: Keyed<R>,
    src: usize,
    literal_b: bool,
}

impl<R: RunRow> Ord for Head<R> {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_keyed(&other.row, &self.row, self.literal_b).then(other.src.cmp(&self.src))
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

/// The runs of one index, by kind; a value index may hold its rows as postings instead
/// (never both at once in the indexer: turning back to rows moves the postings' rows).
pub(super) enum AnyRun {
    Values(IndexRun<ValueEntry>, Option<Postings>),
    Words(IndexRun<WordEntry>),
}

/// Appends `rows` to `to`, taking the vector itself when `to` is empty (the usual case),
/// so a full run's rows are not copied.
fn adopt<T>(to: &mut Vec<T>, rows: Vec<T>) {
    if to.is_empty() {
        *to = rows;
    } else {
        to.extend(rows);
    }
}

/// Every index's rows taken out of a [`Runs`] (index by index).
pub(crate) struct Held(Vec<HeldRows>);

/// One index's rows in a [`Held`]: rows, then active and retired postings.
enum HeldRows {
    Values(Vec<(i64, ValueEntry)>, Option<Postings>, Vec<Postings>),
    Words(Vec<(i64, WordEntry)>),
}

/// A merged chunk of one index's rows, in key order.
pub(crate) enum Chunk {
    Values(Vec<(i64, ValueEntry)>),
    Words(Vec<(i64, WordEntry)>),
    /// Rows of a value index that share one entry: its documents, ascending, as SQL
    /// integers (made here, off the writer thread).
    Postings(ValueEntry, Vec<Value>),
}

/// The rows of every index of a bulk load.
pub(crate) struct Runs {
    runs: Vec<AnyRun>,
    /// Estimated bytes of the rows held in memory (postings aside).
    bytes: usize,
    budget: usize,
}

impl Runs {
    /// `indexes` gives, per index, whether it is a words index and whether its `b` is
    /// always empty. With `postings`, value indexes start out holding postings.
    pub(crate) fn new(
        indexes: impl Iterator<Item = (bool, bool)>,
        budget: usize,
        postings: bool,
    ) -> Runs {
        Runs {
            runs: indexes
                .map(|(words, literal_b)| {
                    if words {
                        AnyRun::Words(IndexRun::new(literal_b))
                    } else {
                        AnyRun::Values(IndexRun::new(literal_b), postings.then(Postings::default))
                    }
                })
                .collect(),
            bytes: 0,
            budget,
        }
    }

    /// Adds rows of value index `i`. Its postings take them while they can; past that,
    /// the index turns to rows for good (until its postings are handed over).
    pub(crate) fn add_values(&mut self, i: usize, rows: impl Iterator<Item = (i64, ValueEntry)>) {
        if let AnyRun::Values(run, postings) = &mut self.runs[i] {
            for row in rows {
                let row = match postings {
                    Some(p) => match p.add(row.0, row.1) {
                        Ok(()) => continue,
                        Err(row) => {
                            // Its documents so far stay postings until the next spill.
                            if let Some(p) = postings.take() {
                                run.retired.push(p);
                            }
                            row
                        }
                    },
                    None => row,
                };
                self.bytes += row.1.mem_bytes();
                run.rows.push(row);
            }
        }
    }

    /// Adds rows of words index `i`.
    pub(crate) fn add_words(&mut self, i: usize, rows: impl Iterator<Item = (i64, WordEntry)>) {
        if let AnyRun::Words(run) = &mut self.runs[i] {
            for row in rows {
                self.bytes += row.1.mem_bytes();
                run.rows.push(row);
            }
        }
    }

    /// Whether the rows in memory exceed the budget.
    pub(crate) fn over_budget(&self) -> bool {
        self.bytes > self.budget
    }

    /// Whether the postings in memory exceed the budget (then they go with the next
    /// [`Runs::swap_held`] and are spilled as rows).
    pub(crate) fn postings_over_budget(&self) -> bool {
        let bytes: usize = self
            .runs
            .iter()
            .map(|run| match run {
                AnyRun::Values(r, p) => {
                    p.as_ref().map_or(0, |p| p.bytes)
                        + r.retired.iter().map(|p| p.bytes).sum::<usize>()
                }
                AnyRun::Words(_) => 0,
            })
            .sum();
        bytes > self.budget
    }

    /// Takes every index's rows and postings out of memory, to be handed to
    /// [`Runs::spill_held`] or [`Runs::put_held`] of another `Runs` with the same indexes
    /// (on another thread).
    pub(crate) fn take_held(&mut self) -> Held {
        self.swap_held(None, true)
    }

    /// Takes every index's rows out of memory, and with `postings` its postings too (fresh
    /// ones take their place), leaving `empty`'s vectors (emptied by a spill, with their
    /// capacity) in place of the rows taken, so the next run does not grow them again.
    pub(super) fn swap_held(&mut self, empty: Option<Held>, postings: bool) -> Held {
        self.bytes = 0;
        let mut empty = empty.map(|h| h.0.into_iter());
        Held(
            self.runs
                .iter_mut()
                .map(|run| {
                    let spare = empty.as_mut().and_then(Iterator::next);
                    match (run, spare) {
                        (AnyRun::Values(r, p), spare) => {
                            let rows = match spare {
                                Some(HeldRows::Values(mut v, ..)) => {
                                    v.clear();
                                    std::mem::replace(&mut r.rows, v)
                                }
                                _ => std::mem::take(&mut r.rows),
                            };
                            let (p, retired) = if postings {
                                (
                                    p.as_mut().map(std::mem::take),
                                    std::mem::take(&mut r.retired),
                                )
                            } else {
                                (None, Vec::new())
                            };
                            HeldRows::Values(rows, p, retired)
                        }
                        (AnyRun::Words(r), Some(HeldRows::Words(mut v))) => {
                            v.clear();
                            HeldRows::Words(std::mem::replace(&mut r.rows, v))
                        }
                        (AnyRun::Words(r), _) => HeldRows::Words(std::mem::take(&mut r.rows)),
                    }
                })
                .collect(),
        )
    }

    /// Adds rows taken by [`Runs::take_held`] to the rows in memory.
    pub(super) fn put_held(&mut self, held: Held) {
        for (run, rows) in self.runs.iter_mut().zip(held.0) {
            match (run, rows) {
                (AnyRun::Values(r, mine), HeldRows::Values(rows, postings, retired)) => {
                    adopt(&mut r.rows, rows);
                    r.retired.extend(retired);
                    match (mine.as_ref(), postings) {
                        (None, Some(p)) => *mine = Some(p),
                        (Some(_), Some(p)) => r.retired.push(p),
                        (_, None) => {}
                    }
                }
                (AnyRun::Words(r), HeldRows::Words(rows)) => adopt(&mut r.rows, rows),
                _ => unreachable!("held rows come from runs of the same indexes"),
            }
        }
    }

    /// Sorts rows taken by [`Runs::take_held`] (postings included) and spills them as one
    /// run per index.
    pub(crate) fn spill_held(&mut self, held: Held) -> io::Result<()> {
        self.put_held(held);
        self.spill_all()
    }

    /// Spills every index's rows when the memory budget is exceeded.
    #[cfg(test)]
    pub(super) fn enforce_budget(&mut self) -> io::Result<()> {
        if self.over_budget() || self.postings_over_budget() {
            self.spill_all()?;
        }
        Ok(())
    }

    /// Sorts and spills every index's rows, postings included (as postings: see
    /// [`IndexRun::retired`]).
    fn spill_all(&mut self) -> io::Result<()> {
        for run in &mut self.runs {
            match run {
                AnyRun::Values(r, p) => {
                    r.spill_all_postings(p.take())?;
                    r.spill()?;
                }
                AnyRun::Words(r) => r.spill()?,
            }
        }
        self.bytes = 0;
        Ok(())
    }

    /// Hands every index's rows to `sink` (index number, chunk), index after index, each
    /// in key order: postings alone as [`Chunk::Postings`], anything else merged.
    pub(crate) fn drain<E: From<io::Error>>(
        self,
        first: Option<usize>,
        mut sink: impl FnMut(usize, Chunk) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut runs: Vec<Option<AnyRun>> = self.runs.into_iter().map(Some).collect();
        let order = first
            .into_iter()
            .chain((0..runs.len()).filter(|&i| Some(i) != first));
        for i in order {
            let Some(run) = runs[i].take() else {
                continue;
            };
            match run {
                AnyRun::Values(r, Some(p))
                    if r.rows.is_empty() && r.spans.is_empty() && r.retired.is_empty() =>
                {
                    for (entry, docs) in p.into_sorted(r.literal_b) {
                        for piece in docs.chunks(POSTING_CHUNK) {
                            let ids = piece.iter().map(|&d| Value::Integer(d.into())).collect();
                            sink(i, Chunk::Postings(entry.clone(), ids))?;
                        }
                    }
                }
                AnyRun::Values(mut r, p) => {
                    // Postings beside rows are merged from disk rather than made rows.
                    r.spill_all_postings(p)?;
                    r.drain(|rows| sink(i, Chunk::Values(rows)))?;
                }
                AnyRun::Words(r) => r.drain(|rows| sink(i, Chunk::Words(rows)))?,
            }
        }
        Ok(())
    }
}

/// A `Hasher` for keys that are already hashes.
#[derive(Default)]
struct PassThrough(u64);

impl std::hash::Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drains `rows` through runs spilled every `per_run` rows.
    fn through_runs<R: RunRow + Clone>(
        rows: &[(i64, R)],
        literal_b: bool,
        per_run: usize,
        add: impl Fn(&mut Runs, Vec<(i64, R)>),
        take: impl Fn(Chunk) -> Vec<(i64, R)>,
        words: bool,
    ) -> Vec<(i64, R)> {
        through_runs_with(rows, literal_b, per_run, 0, false, add, take, words)
    }

    /// [`through_runs`] with a memory budget, and postings or not.
    #[allow(clippy::too_many_arguments)]
    fn through_runs_with<R: RunRow + Clone>(
        rows: &[(i64, R)],
        literal_b: bool,
        per_run: usize,
        budget: usize,
        postings: bool,
        add: impl Fn(&mut Runs, Vec<(i64, R)>),
        take: impl Fn(Chunk) -> Vec<(i64, R)>,
        words: bool,
    ) -> Vec<(i64, R)> {
        let mut runs = Runs::new([(words, literal_b)].into_iter(), budget, postings);
        for chunk in rows.chunks(per_run) {
            add(&mut runs, chunk.to_vec());
            runs.enforce_budget().unwrap();
        }
        let mut out = Vec::new();
        runs.drain(None, |_, chunk| -> io::Result<()> {
            out.extend(take(chunk));
            Ok(())
        })
        .unwrap();
        out
    }

    /// The rows of a value index's chunk.
    fn value_rows(chunk: Chunk) -> Vec<(i64, ValueEntry)> {
        match chunk {
            Chunk::Values(v) => v,
            Chunk::Postings(entry, docs) => docs
                .into_iter()
                .map(|d| match d {
                    Value::Integer(d) => (d, entry.clone()),
                    other => panic!("a posting that is not a row id: {other:?}"),
                })
                .collect(),
            Chunk::Words(_) => unreachable!(),
        }
    }

    fn value(b: &str, k: ValueKey) -> ValueEntry {
        ValueEntry {
            b: b.into(),
            k,
            n: Some(1.5),
            t: None,
        }
    }

    #[test]
    fn runs_come_back_complete_and_in_key_order() {
        let keys = [
            ValueKey::Int(-3),
            ValueKey::Int(i64::MAX),
            ValueKey::Int(9_007_199_254_740_993),
            ValueKey::Real(9_007_199_254_740_992.0),
            ValueKey::Real(-0.5),
            ValueKey::Real(2.5),
            ValueKey::Text(String::new()),
            ValueKey::Text("US".into()),
            ValueKey::Text("olivia.smith1@icloud.com".into()),
            ValueKey::Text("olivia.smith1@gmail.com".into()),
            ValueKey::Text("olivia.smith12@gmail.com".into()),
            ValueKey::Bool(false),
            ValueKey::Bool(true),
        ];
        let bindings = ["", "finance", "weeklyDigest", "weeklyDigestExtra", "a"];
        for literal_b in [true, false] {
            let mut rows = Vec::new();
            let mut doc = 0;
            for round in 0..7 {
                for (i, k) in keys.iter().enumerate() {
                    let b = if literal_b {
                        ""
                    } else {
                        bindings[(i + round) % bindings.len()]
                    };
                    doc += 1;
                    // Documents in a scrambled order.
                    rows.push(((doc * 7919) % 1000, value(b, k.clone())));
                }
            }
            let mut expected = rows.clone();
            expected.sort_by(|a, b| ValueEntry::cmp_rows(a, b, literal_b));
            for per_run in [1, 5, rows.len()] {
                let out = through_runs(
                    &rows,
                    literal_b,
                    per_run,
                    |runs, v| runs.add_values(0, v.into_iter()),
                    value_rows,
                    false,
                );
                assert_eq!(out, expected, "literal_b {literal_b}, per_run {per_run}");
            }
        }
        let words: Vec<(i64, WordEntry)> = ["zeta", "alpha", "alphabetically-long", "", "beta"]
            .iter()
            .enumerate()
            .flat_map(|(i, w)| {
                ["", "b1", "a-long-binding-name"].map(|b| {
                    (
                        i as i64 % 3,
                        WordEntry {
                            b: b.into(),
                            w: (*w).into(),
                        },
                    )
                })
            })
            .collect();
        let mut expected = words.clone();
        expected.sort_by(|a, b| WordEntry::cmp_rows(a, b, false));
        let out = through_runs(
            &words,
            false,
            4,
            |runs, v| runs.add_words(0, v.into_iter()),
            |c| match c {
                Chunk::Words(v) => v,
                Chunk::Values(_) | Chunk::Postings(..) => unreachable!(),
            },
            true,
        );
        assert_eq!(out, expected);
    }

    /// Rows of a bulk load: documents in id order, `per_doc` entries each, drawn from
    /// `distinct` entries (some with `n`/`t`), bound or not.
    fn loaded_rows(docs: i64, distinct: usize, literal_b: bool) -> Vec<(i64, ValueEntry)> {
        let mut rows = Vec::new();
        for doc in 1..=docs {
            for j in 0..3u64 {
                let x = (doc as u64 * 2_654_435_761 + j * 97) % distinct as u64;
                let k = match x % 4 {
                    0 => ValueKey::Bool(x.is_multiple_of(8)),
                    1 => ValueKey::Int(x as i64 - 5),
                    2 => ValueKey::Real(x as f64 / 4.0),
                    _ => ValueKey::Text(format!("c{x}")),
                };
                let b = if literal_b {
                    String::new()
                } else {
                    format!("s{}", x % 3)
                };
                let entry = ValueEntry {
                    b,
                    n: x.is_multiple_of(5).then_some(x as f64),
                    t: x.is_multiple_of(7).then_some(x as i64),
                    k,
                };
                // One row per distinct entry and document, as the entry walks give.
                if !rows
                    .iter()
                    .rev()
                    .take(3)
                    .any(|(d, e)| *d == doc && *e == entry)
                {
                    rows.push((doc, entry));
                }
            }
        }
        rows
    }

    #[test]
    fn postings_come_back_complete_and_in_key_order() {
        for literal_b in [true, false] {
            // Few entries (postings to the end), and more than postings hold (rows).
            for distinct in [1, 13, MAX_POSTING_ENTRIES * 3] {
                let rows = loaded_rows(2_000, distinct, literal_b);
                let mut expected = rows.clone();
                expected.sort_by(|a, b| ValueEntry::cmp_rows(a, b, literal_b));
                // Postings kept to the end, spilled every batch, or now and then.
                for budget in [usize::MAX, 0, 20_000] {
                    for per_run in [1, 64, rows.len()] {
                        let out = through_runs_with(
                            &rows,
                            literal_b,
                            per_run,
                            budget,
                            true,
                            |runs, v| runs.add_values(0, v.into_iter()),
                            value_rows,
                            false,
                        );
                        assert_eq!(
                            out, expected,
                            "literal_b {literal_b}, distinct {distinct}, budget {budget}, per_run {per_run}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn few_entries_drain_as_postings_and_many_as_rows() {
        let drained = |rows: &[(i64, ValueEntry)]| {
            let mut runs = Runs::new([(false, true)].into_iter(), usize::MAX, true);
            runs.add_values(0, rows.iter().cloned());
            let mut chunks = Vec::new();
            runs.drain(None, |_, chunk| -> io::Result<()> {
                chunks.push(matches!(chunk, Chunk::Postings(..)));
                Ok(())
            })
            .unwrap();
            chunks
        };
        let few = loaded_rows(500, 4, true);
        let chunks = drained(&few);
        assert!(chunks.iter().all(|&p| p), "{chunks:?}");
        assert!(!chunks.is_empty());
        let many = loaded_rows(2_000, MAX_POSTING_ENTRIES * 3, true);
        assert!(drained(&many).iter().all(|&p| !p));
        // A document out of order turns the index to rows, and loses nothing.
        let mut scrambled = few.clone();
        scrambled.swap(10, 400);
        assert!(drained(&scrambled).iter().all(|&p| !p));
        // So does an id beyond u32.
        let mut large = few.clone();
        large.push((i64::from(u32::MAX) + 1, few[0].1.clone()));
        assert!(drained(&large).iter().all(|&p| !p));
    }
}
