//! A seeded generator of realistic email accounts (`acql gen`), streaming NDJSON.
//!
//! Document `i` of seed `s` depends only on `(s, i)`: a SplitMix64 stream seeded from both,
//! hand-written here so the output stays byte-identical across crate versions and
//! platforms. The distributions: ~0.8 KB per
//! document, 0–6 of 40 newsletters with Zipf popularity (`newsletter` the most popular,
//! `localNews` the rarest), ~60% lite-only accounts, ~0.9% of emails holding the word
//! `example`, timestamps across 2015–2026, a few missing fields and `null`s.
//!
//! JSON is written by hand (every generated string is plain ASCII without quotes or
//! backslashes), which is what makes it fast.

use std::io;

use serde_json::Value;

use crate::store::time::push_iso;

/// SplitMix64: tiny, fast, and good enough for synthetic data.
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn for_doc(seed: u64, index: u64) -> Rng {
        let mut r = Rng(seed ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03));
        r.next();
        r
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`); Lemire's multiply-shift, bias negligible here.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    /// `true` with probability `p_per_mille / 1000`.
    fn chance(&mut self, p_per_mille: u64) -> bool {
        self.below(1000) < p_per_mille
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.index(items.len())]
    }

    /// Picks from `(item, weight)` pairs.
    fn weighted<'a, T>(&mut self, items: &'a [(T, u32)]) -> &'a T {
        let total: u32 = items.iter().map(|(_, w)| w).sum();
        let mut x = self.below(u64::from(total)) as u32;
        for (item, w) in items {
            if x < *w {
                return item;
            }
            x -= w;
        }
        &items[items.len() - 1].0
    }
}

const FEMALE: &[&str] = &[
    "anna", "maria", "sarah", "emma", "laura", "julia", "sophie", "lena", "olivia", "mia",
    "hannah", "lea", "chloe", "camille", "giulia", "sofia", "lucia", "elena", "ines", "marta",
    "eva", "nina", "claire", "alice", "jessica", "emily", "grace", "amelia", "isabel", "yuki",
];
const MALE: &[&str] = &[
    "james", "john", "michael", "david", "daniel", "thomas", "lukas", "paul", "felix", "max",
    "jonas", "leon", "lucas", "hugo", "louis", "marco", "luca", "matteo", "pablo", "diego",
    "javier", "pedro", "peter", "mark", "tom", "oliver", "jack", "noah", "liam", "kenji",
];
const LAST: &[&str] = &[
    "smith",
    "johnson",
    "williams",
    "brown",
    "jones",
    "miller",
    "davis",
    "garcia",
    "wilson",
    "taylor",
    "mueller",
    "schmidt",
    "schneider",
    "fischer",
    "weber",
    "meyer",
    "wagner",
    "becker",
    "martin",
    "bernard",
    "dubois",
    "durand",
    "rossi",
    "russo",
    "ferrari",
    "bianchi",
    "romano",
    "lopez",
    "gonzalez",
    "fernandez",
    "sanchez",
    "perez",
    "silva",
    "santos",
    "costa",
    "nowak",
    "kowalski",
    "jansen",
    "devries",
    "andersson",
    "johansson",
    "nielsen",
    "hansen",
    "tanaka",
    "suzuki",
    "sato",
    "kim",
    "lee",
    "park",
    "chen",
];
const DOMAINS: &[(&str, u32)] = &[
    ("gmail.com", 300),
    ("yahoo.com", 110),
    ("outlook.com", 90),
    ("hotmail.com", 90),
    ("icloud.com", 60),
    ("gmx.de", 60),
    ("web.de", 50),
    ("aol.com", 30),
    ("orange.fr", 40),
    ("libero.it", 30),
    ("mail.ru", 20),
    ("yandex.com", 15),
    ("protonmail.com", 20),
    ("t-online.de", 25),
    ("btinternet.com", 20),
    ("example.com", 6),
    ("acme-corp.com", 14),
];

/// A country: code, cities, zip-code digits (0: none), languages.
type Country = (
    &'static str,
    &'static [&'static str],
    u8,
    &'static [&'static str],
);

/// Countries with their weights.
const COUNTRIES: &[(Country, u32)] = &[
    (
        (
            "US",
            &[
                "New York",
                "Los Angeles",
                "Chicago",
                "Houston",
                "Seattle",
                "Boston",
            ],
            5,
            &["en", "es"],
        ),
        220,
    ),
    (
        (
            "DE",
            &[
                "Berlin",
                "Hamburg",
                "Munich",
                "Cologne",
                "Frankfurt",
                "Stuttgart",
            ],
            5,
            &["de", "en"],
        ),
        90,
    ),
    (
        (
            "GB",
            &["London", "Manchester", "Birmingham", "Leeds", "Glasgow"],
            0,
            &["en"],
        ),
        80,
    ),
    (
        (
            "FR",
            &["Paris", "Lyon", "Marseille", "Toulouse", "Nice"],
            5,
            &["fr", "en"],
        ),
        70,
    ),
    (
        (
            "IT",
            &["Rome", "Milan", "Naples", "Turin", "Florence"],
            5,
            &["it", "en"],
        ),
        50,
    ),
    (
        (
            "ES",
            &["Madrid", "Barcelona", "Valencia", "Seville", "Bilbao"],
            5,
            &["es", "ca", "en"],
        ),
        50,
    ),
    (
        (
            "CA",
            &["Toronto", "Montreal", "Vancouver", "Calgary"],
            0,
            &["en", "fr"],
        ),
        40,
    ),
    (
        (
            "BR",
            &["Sao Paulo", "Rio de Janeiro", "Brasilia", "Salvador"],
            8,
            &["pt"],
        ),
        40,
    ),
    (
        (
            "MX",
            &["Mexico City", "Guadalajara", "Monterrey"],
            5,
            &["es"],
        ),
        30,
    ),
    (
        (
            "NL",
            &["Amsterdam", "Rotterdam", "Utrecht", "The Hague"],
            4,
            &["nl", "en"],
        ),
        30,
    ),
    (
        (
            "AU",
            &["Sydney", "Melbourne", "Brisbane", "Perth"],
            4,
            &["en"],
        ),
        30,
    ),
    (
        ("JP", &["Tokyo", "Osaka", "Yokohama", "Kyoto"], 7, &["ja"]),
        30,
    ),
    (
        (
            "PL",
            &["Warsaw", "Krakow", "Wroclaw", "Gdansk"],
            5,
            &["pl", "en"],
        ),
        25,
    ),
    (
        (
            "SE",
            &["Stockholm", "Gothenburg", "Malmo"],
            5,
            &["sv", "en"],
        ),
        20,
    ),
    (
        (
            "CH",
            &["Zurich", "Geneva", "Basel", "Bern"],
            4,
            &["de", "fr", "it"],
        ),
        20,
    ),
    (
        ("AT", &["Vienna", "Graz", "Linz", "Salzburg"], 4, &["de"]),
        20,
    ),
    (
        ("BE", &["Brussels", "Antwerp", "Ghent"], 4, &["nl", "fr"]),
        20,
    ),
    (("PT", &["Lisbon", "Porto", "Braga"], 4, &["pt"]), 15),
    (
        ("DK", &["Copenhagen", "Aarhus", "Odense"], 4, &["da", "en"]),
        15,
    ),
    (("IE", &["Dublin", "Cork", "Galway"], 0, &["en", "ga"]), 15),
    (
        (
            "IN",
            &["Mumbai", "Delhi", "Bangalore", "Chennai"],
            6,
            &["en", "hi"],
        ),
        30,
    ),
    (("KR", &["Seoul", "Busan", "Incheon"], 5, &["ko"]), 15),
    (
        ("NO", &["Oslo", "Bergen", "Trondheim"], 4, &["no", "en"]),
        10,
    ),
    (
        ("FI", &["Helsinki", "Espoo", "Tampere"], 5, &["fi", "sv"]),
        10,
    ),
];

/// The newsletters, most popular first; popularity follows Zipf (weight 1/rank).
pub const NEWSLETTERS: [&str; 40] = [
    "newsletter",
    "weeklyDigest",
    "offers",
    "productUpdates",
    "events",
    "blog",
    "sports",
    "travel",
    "fashion",
    "technology",
    "recipes",
    "health",
    "finance",
    "music",
    "movies",
    "gaming",
    "books",
    "kids",
    "pets",
    "garden",
    "autos",
    "realEstate",
    "careers",
    "education",
    "science",
    "art",
    "photography",
    "outdoor",
    "fitness",
    "beauty",
    "home",
    "diy",
    "wine",
    "coffee",
    "charity",
    "community",
    "partnerOffers",
    "surveys",
    "regionalNews",
    "localNews",
];

const TAGS: &[&str] = &[
    "web",
    "mobile",
    "store",
    "import",
    "campaign2024",
    "social_user",
    "pet_dog",
    "vip",
    "promo",
];
const INTERESTS: &[&str] = &[
    "running",
    "cooking",
    "travel",
    "music",
    "reading",
    "gaming",
    "cycling",
    "yoga",
    "photography",
    "football",
    "tennis",
    "hiking",
    "movies",
    "fashion",
    "technology",
    "gardening",
];
const DEVICES: &[(&str, &str)] = &[
    ("phone", "ios"),
    ("phone", "android"),
    ("tablet", "ios"),
    ("tablet", "android"),
    ("desktop", "windows"),
    ("desktop", "macos"),
];
const CHANNELS: &[&str] = &["email", "sms", "push", "none"];
const FREQUENCIES: &[&str] = &["daily", "weekly", "monthly"];
const SUBSCRIPTION_COUNTS: &[(usize, u32)] =
    &[(0, 15), (1, 25), (2, 22), (3, 15), (4, 10), (5, 8), (6, 5)];

/// 2015-01-01T00:00:00Z and 2026-07-01T00:00:00Z in epoch milliseconds.
const START_MS: i64 = 1_420_070_400_000;
const END_MS: i64 = 1_782_864_000_000;

const HEX: &[u8; 16] = b"0123456789abcdef";

fn push_hex(out: &mut String, rng: &mut Rng, words: usize) {
    for _ in 0..words {
        let mut x = rng.next();
        for _ in 0..16 {
            out.push(HEX[(x & 15) as usize] as char);
            x >>= 4;
        }
    }
}

fn push_u64(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&buf[i..]).unwrap_or("0"));
}

fn push_i64(out: &mut String, n: i64) {
    if n < 0 {
        out.push('-');
    }
    push_u64(out, n.unsigned_abs());
}

/// `"key":` (with a leading comma unless first).
fn key(out: &mut String, first: &mut bool, k: &str) {
    if !*first {
        out.push(',');
    }
    *first = false;
    out.push('"');
    out.push_str(k);
    out.push_str("\":");
}

fn string(out: &mut String, s: &str) {
    out.push('"');
    out.push_str(s);
    out.push('"');
}

fn iso(out: &mut String, ms: i64) {
    out.push('"');
    push_iso(out, ms);
    out.push('"');
}

/// Appends document `index` of `seed` (one JSON object, no newline) to `out`.
pub fn document(seed: u64, index: u64, out: &mut String) {
    let rng = &mut Rng::for_doc(seed, index);
    let female = rng.chance(500);
    let first_name = rng.pick(if female { FEMALE } else { MALE });
    let last_name = rng.pick(LAST);
    let domain = *rng.weighted(DOMAINS);

    // The local part's letters carry no digits, so appending the index keeps emails unique.
    let mut email = String::with_capacity(40);
    match rng.below(5) {
        0 => {
            email.push_str(&first_name[..1]);
            email.push('.');
            email.push_str(last_name);
        }
        1 => {
            email.push_str(first_name);
            email.push('.');
            email.push_str(last_name);
        }
        2 => {
            email.push_str(first_name);
            email.push('_');
            email.push_str(last_name);
        }
        3 => {
            email.push_str(&first_name[..1]);
            email.push_str(last_name);
        }
        _ => email.push_str(first_name),
    }
    if rng.chance(3) {
        email.push_str(".example");
    }
    push_u64(&mut email, index);
    email.push('@');
    email.push_str(domain);

    let created = START_MS + rng.below((END_MS - START_MS) as u64 - 86_400_000) as i64;
    // Recent updates are more common: the square root pulls the draw towards the end.
    let span = (END_MS - created) as f64;
    let u = (rng.below(1_000_000) as f64 / 1_000_000.0).sqrt();
    let updated = created + (span * u) as i64;

    out.push('{');
    let mut first = true;
    key(out, &mut first, "email");
    string(out, &email);

    // profile
    key(out, &mut first, "profile");
    out.push('{');
    let mut pf = true;
    if !rng.chance(10) {
        key(out, &mut pf, "email");
        string(out, &email);
    }
    key(out, &mut pf, "firstName");
    out.push('"');
    let mut cap = first_name.chars();
    if let Some(c) = cap.next() {
        out.push(c.to_ascii_uppercase());
        out.push_str(cap.as_str());
    }
    out.push('"');
    key(out, &mut pf, "lastName");
    out.push('"');
    let mut cap = last_name.chars();
    if let Some(c) = cap.next() {
        out.push(c.to_ascii_uppercase());
        out.push_str(cap.as_str());
    }
    out.push('"');
    if !rng.chance(50) {
        key(out, &mut pf, "age");
        push_u64(out, 16 + rng.below(40) + rng.below(30));
    }
    key(out, &mut pf, "gender");
    string(
        out,
        if rng.chance(20) {
            "u"
        } else if female {
            "f"
        } else {
            "m"
        },
    );
    let (country, cities, zip_digits, languages) = *rng.weighted(COUNTRIES);
    if rng.chance(40) {
        key(out, &mut pf, "country");
        out.push_str("null");
    } else {
        key(out, &mut pf, "country");
        string(out, country);
        key(out, &mut pf, "city");
        string(out, rng.pick(cities));
        if zip_digits > 0 && !rng.chance(30) {
            key(out, &mut pf, "zip");
            out.push('"');
            for _ in 0..zip_digits {
                out.push((b'0' + rng.below(10) as u8) as char);
            }
            out.push('"');
        }
    }
    key(out, &mut pf, "languages");
    out.push('[');
    string(out, languages[0]);
    if languages.len() > 1 && rng.chance(400) {
        out.push(',');
        string(out, languages[1 + rng.index(languages.len() - 1)]);
    }
    out.push(']');
    if rng.chance(150) {
        key(out, &mut pf, "birthYear");
        push_u64(out, 1950 + rng.below(58));
    }
    if rng.chance(100) {
        key(out, &mut pf, "locale");
        out.push('"');
        out.push_str(languages[0]);
        out.push('_');
        out.push_str(country);
        out.push('"');
    }
    out.push('}');

    // subscriptions: distinct newsletters drawn by Zipf weight 1/rank.
    let count = *rng.weighted(SUBSCRIPTION_COUNTS);
    let mut chosen = [usize::MAX; 6];
    let mut n = 0;
    while n < count {
        let pick = zipf(rng);
        if !chosen[..n].contains(&pick) {
            chosen[n] = pick;
            n += 1;
        }
    }
    key(out, &mut first, "subscriptions");
    out.push('{');
    for (i, &sub) in chosen[..count].iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        string(out, NEWSLETTERS[sub]);
        out.push_str(":{\"email\":{");
        let subscribed = rng.chance(800);
        out.push_str("\"isSubscribed\":");
        out.push_str(if subscribed { "true" } else { "false" });
        let state = created + rng.below((updated - created) as u64 + 1) as i64;
        if rng.chance(650) {
            out.push_str(",\"lastUpdatedSubscriptionState\":");
            iso(out, state);
        }
        if rng.chance(250) {
            out.push_str(",\"tags\":[");
            let tags = 1 + rng.index(2);
            for t in 0..tags {
                if t > 0 {
                    out.push(',');
                }
                string(out, rng.pick(TAGS));
            }
            out.push(']');
        }
        if rng.chance(150) {
            out.push_str(",\"doubleOptIn\":{\"status\":");
            let status = if !subscribed {
                "NotConfirmed"
            } else if rng.chance(700) {
                "Confirmed"
            } else {
                "Pending"
            };
            string(out, status);
            if status != "NotConfirmed" {
                out.push_str(",\"emailSentTime\":");
                iso(out, state);
                out.push_str(",\"confirmTime\":");
                if status == "Confirmed" {
                    iso(out, state + rng.below(3_600_000 * 48) as i64);
                } else {
                    out.push_str("null");
                }
            }
            out.push('}');
        }
        out.push_str("}}");
    }
    out.push('}');

    // data
    if !rng.chance(30) {
        key(out, &mut first, "data");
        out.push('{');
        let mut df = true;
        key(out, &mut df, "loyaltyPoints");
        push_u64(out, rng.below(20) * rng.below(500));
        key(out, &mut df, "vip");
        out.push_str(if rng.chance(80) { "true" } else { "false" });
        key(out, &mut df, "interests");
        out.push('[');
        for i in 0..rng.below(3) {
            if i > 0 {
                out.push(',');
            }
            string(out, rng.pick(INTERESTS));
        }
        out.push(']');
        key(out, &mut df, "crmId");
        // Mixed types on purpose: real tenants store ids as strings and numbers.
        if rng.chance(700) {
            out.push_str("\"C-");
            push_u64(out, 100_000 + rng.below(900_000));
            out.push('"');
        } else {
            push_u64(out, 100_000 + rng.below(900_000));
        }
        if rng.chance(350) {
            key(out, &mut df, "preferences");
            out.push_str("{\"channel\":");
            string(out, rng.pick(CHANNELS));
            out.push_str(",\"frequency\":");
            string(out, rng.pick(FREQUENCIES));
            out.push('}');
        }
        if rng.chance(200) {
            key(out, &mut df, "lastPurchase");
            out.push_str("{\"date\":");
            iso(
                out,
                created + rng.below((updated - created) as u64 + 1) as i64,
            );
            out.push_str(",\"amount\":");
            push_u64(out, 1 + rng.below(500));
            out.push('.');
            let cents = rng.below(100);
            out.push((b'0' + (cents / 10) as u8) as char);
            out.push((b'0' + (cents % 10) as u8) as char);
            out.push_str(",\"currency\":");
            string(
                out,
                if country == "US" {
                    "USD"
                } else if country == "GB" {
                    "GBP"
                } else {
                    "EUR"
                },
            );
            out.push('}');
        }
        if rng.chance(80) {
            key(out, &mut df, "devices");
            out.push('[');
            for i in 0..1 + rng.below(2) {
                if i > 0 {
                    out.push(',');
                }
                let (kind, os) = rng.pick(DEVICES);
                out.push_str("{\"type\":");
                string(out, kind);
                out.push_str(",\"os\":");
                string(out, os);
                out.push_str(",\"lastSeen\":");
                push_i64(out, updated - rng.below(86_400_000 * 30) as i64);
                out.push('}');
            }
            out.push(']');
        }
        if rng.chance(50) {
            key(out, &mut df, "nickname");
            out.push_str("null");
        }
        if rng.chance(500) {
            key(out, &mut df, "source");
            string(
                out,
                if rng.chance(300) {
                    "import"
                } else if rng.chance(500) {
                    "web"
                } else {
                    "mobile"
                },
            );
        }
        out.push('}');
    }

    // lite/full mix: ~92% lite, ~35% full; a few flags missing.
    let full = rng.chance(350);
    let lite = !full || rng.chance(770);
    if !rng.chance(10) {
        key(out, &mut first, "hasLiteAccount");
        out.push_str(if lite { "true" } else { "false" });
    }
    if !rng.chance(20) {
        key(out, &mut first, "hasFullAccount");
        out.push_str(if full { "true" } else { "false" });
    }
    if full {
        key(out, &mut first, "UID");
        out.push('"');
        push_hex(out, rng, 2);
        out.push('"');
    }
    key(out, &mut first, "token");
    out.push('"');
    push_hex(out, rng, 4);
    out.push('"');
    key(out, &mut first, "channel");
    string(out, "email");
    key(out, &mut first, "created");
    iso(out, created);
    key(out, &mut first, "createdTimestamp");
    push_i64(out, created);
    key(out, &mut first, "lastUpdated");
    iso(out, updated);
    key(out, &mut first, "lastUpdatedTimestamp");
    push_i64(out, updated);
    out.push('}');
}

/// A newsletter rank drawn with weight 1/(rank+1).
fn zipf(rng: &mut Rng) -> usize {
    // Cumulative weights of 1/k for k = 1..=40, scaled to integers once per call site.
    static CUMULATIVE: std::sync::OnceLock<[u64; 40]> = std::sync::OnceLock::new();
    let cum = CUMULATIVE.get_or_init(|| {
        let mut acc = 0u64;
        let mut out = [0u64; 40];
        for (k, slot) in out.iter_mut().enumerate() {
            acc += 1_000_000_000 / (k as u64 + 1);
            *slot = acc;
        }
        out
    });
    let x = rng.below(cum[39]);
    cum.partition_point(|&c| c <= x)
}

/// Writes `count` documents of `seed` as NDJSON to `out`.
pub fn generate(count: u64, seed: u64, mut out: impl io::Write) -> io::Result<()> {
    let mut buf = String::with_capacity(1 << 20);
    for i in 0..count {
        document(seed, i, &mut buf);
        buf.push('\n');
        if buf.len() > (1 << 20) - 4096 {
            out.write_all(buf.as_bytes())?;
            buf.clear();
        }
    }
    out.write_all(buf.as_bytes())?;
    out.flush()
}

/// The documents of `seed` as JSON values, endlessly (`.take(n)` them). Slower than
/// [`generate`]: each document is rendered and parsed.
#[derive(Clone, Debug)]
pub struct Documents {
    seed: u64,
    next: u64,
    line: String,
}

impl Documents {
    /// Document 0, 1, 2, … of `seed`.
    pub fn new(seed: u64) -> Documents {
        Documents {
            seed,
            next: 0,
            line: String::with_capacity(2048),
        }
    }
}

impl Iterator for Documents {
    type Item = Value;

    fn next(&mut self) -> Option<Value> {
        self.line.clear();
        document(self.seed, self.next, &mut self.line);
        self.next += 1;
        serde_json::from_str(&self.line).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_valid_deterministic_and_unique() {
        let mut a = Vec::new();
        generate(2000, 7, &mut a).unwrap();
        let mut b = Vec::new();
        generate(2000, 7, &mut b).unwrap();
        assert_eq!(a, b);
        let mut c = Vec::new();
        generate(10, 8, &mut c).unwrap();
        assert_ne!(a[..c.len()], c[..]);
        let text = String::from_utf8(a).unwrap();
        let mut emails = std::collections::HashSet::new();
        let mut total = 0;
        for line in text.lines() {
            let doc: Value = serde_json::from_str(line).unwrap();
            total += line.len();
            assert!(emails.insert(doc["email"].as_str().unwrap().to_string()));
            assert_eq!(doc["token"].as_str().unwrap().len(), 64);
            assert!(crate::store::normalize_email(doc["email"].as_str().unwrap()).is_some());
        }
        let avg = total / 2000;
        assert!((700..1000).contains(&avg), "average document size {avg}");
    }

    #[test]
    fn newsletter_popularity_is_skewed() {
        let docs: Vec<Value> = Documents::new(1).take(5000).collect();
        let subscribed = |name: &str| {
            docs.iter()
                .filter(|d| d["subscriptions"][name]["email"]["isSubscribed"] == Value::Bool(true))
                .count()
        };
        let (top, rare) = (subscribed("newsletter"), subscribed("localNews"));
        assert!(top > 1500 && top < 2200, "newsletter {top}");
        assert!(rare < 100, "localNews {rare}");
        let example = docs
            .iter()
            .filter(|d| d["email"].as_str().unwrap().contains("example"))
            .count();
        assert!((10..100).contains(&example), "example {example}");
    }
}
