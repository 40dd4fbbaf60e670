//! The Nexmark event generator: the canonical id and time arithmetic of the
//! Beam/Flink generator (persons, auctions and bids in the 1:3:46 proportion,
//! hot auctions, bidders and sellers), with a per-event random stream so any
//! event can be made on its own, deterministic for a seed.

/// Events per proportion cycle, and each kind's share.
pub(crate) const PERSON_PROPORTION: i64 = 1;
pub(crate) const AUCTION_PROPORTION: i64 = 3;
pub(crate) const TOTAL_PROPORTION: i64 = 50;

const FIRST_PERSON_ID: i64 = 1000;
const FIRST_AUCTION_ID: i64 = 1000;
const FIRST_CATEGORY_ID: i64 = 10;
const NUM_CATEGORIES: u64 = 5;
const HOT_AUCTION_RATIO: i64 = 100;
const HOT_BIDDER_RATIO: i64 = 100;
const HOT_SELLER_RATIO: i64 = 100;
const NUM_IN_FLIGHT_AUCTIONS: i64 = 100;
const AUCTION_ID_LEAD: i64 = 10;
const NUM_ACTIVE_PEOPLE: i64 = 1000;
const PERSON_ID_LEAD: i64 = 10;

const HOT_CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];
const FIRST_NAMES: [&str; 11] = [
    "Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter",
];
const LAST_NAMES: [&str; 9] = [
    "Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris",
];
const CITIES: [&str; 10] = [
    "Phoenix",
    "Los Angeles",
    "San Francisco",
    "Boise",
    "Portland",
    "Bend",
    "Redmond",
    "Seattle",
    "Kent",
    "Cheyenne",
];
const STATES: [&str; 6] = ["AZ", "CA", "ID", "OR", "WA", "WY"];

/// The kind of event number `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Person,
    Auction,
    Bid,
}

pub(crate) fn kind(n: i64) -> Kind {
    let rem = n % TOTAL_PROPORTION;
    if rem < PERSON_PROPORTION {
        Kind::Person
    } else if rem < PERSON_PROPORTION + AUCTION_PROPORTION {
        Kind::Auction
    } else {
        Kind::Bid
    }
}

/// Random numbers for one event: SplitMix64 seeded by seed and event id.
pub(crate) struct EventRng(u64);

impl EventRng {
    pub fn new(seed: u64, event: i64) -> Self {
        EventRng(seed ^ (event as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Skip `n` draws (a SplitMix64 step is one addition): what drawing
    /// and dropping `n` values would leave.
    pub fn skip(&mut self, n: u64) {
        self.0 = self.0.wrapping_add(n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

fn last_base0_person_id(event: i64) -> i64 {
    let epoch = event / TOTAL_PROPORTION;
    let offset = (event % TOTAL_PROPORTION).min(PERSON_PROPORTION - 1);
    epoch * PERSON_PROPORTION + offset
}

fn last_base0_auction_id(event: i64) -> i64 {
    let mut epoch = event / TOTAL_PROPORTION;
    let mut offset = event % TOTAL_PROPORTION;
    if offset < PERSON_PROPORTION {
        epoch -= 1;
        offset = AUCTION_PROPORTION - 1;
    } else if offset >= PERSON_PROPORTION + AUCTION_PROPORTION {
        offset = AUCTION_PROPORTION - 1;
    } else {
        offset -= PERSON_PROPORTION;
    }
    epoch * AUCTION_PROPORTION + offset
}

fn next_base0_person_id(event: i64, rng: &mut EventRng) -> i64 {
    let people = last_base0_person_id(event) + 1;
    let active = people.min(NUM_ACTIVE_PEOPLE);
    people - active + rng.below((active + PERSON_ID_LEAD) as u64) as i64
}

fn next_base0_auction_id(event: i64, rng: &mut EventRng) -> i64 {
    let max = last_base0_auction_id(event);
    let min = (max - NUM_IN_FLIGHT_AUCTIONS).max(0);
    min + rng.below((max - min + 1 + AUCTION_ID_LEAD) as u64) as i64
}

fn next_price(rng: &mut EventRng) -> i64 {
    (10f64.powf(rng.unit() * 6.0) * 100.0).round() as i64
}

/// A bid's numeric fields.
pub(crate) struct Bid {
    pub auction: i64,
    pub bidder: i64,
    pub price: i64,
}

pub(crate) fn bid(event: i64, rng: &mut EventRng) -> Bid {
    let auction = if rng.below(HOT_AUCTION_RATIO as u64) > 0 {
        (last_base0_auction_id(event) / HOT_AUCTION_RATIO) * HOT_AUCTION_RATIO
    } else {
        next_base0_auction_id(event, rng)
    } + FIRST_AUCTION_ID;
    let bidder = if rng.below(HOT_BIDDER_RATIO as u64) > 0 {
        (last_base0_person_id(event) / HOT_BIDDER_RATIO) * HOT_BIDDER_RATIO + 1
    } else {
        next_base0_person_id(event, rng)
    } + FIRST_PERSON_ID;
    Bid {
        auction,
        bidder,
        price: next_price(rng),
    }
}

/// A bid's channel and URL (drawn after the numeric fields).
pub(crate) fn bid_channel_url(rng: &mut EventRng) -> (String, String) {
    let channel = if rng.below(2) > 0 {
        rng.pick(&HOT_CHANNELS).to_string()
    } else {
        format!("channel-{}", rng.below(10_000))
    };
    let url = format!(
        "https://www.nexmark.com/item.htm?query=1&channel_id={}",
        rng.below(10_000)
    );
    (channel, url)
}

/// An auction's fields (times are filled in by the caller).
pub(crate) struct Auction {
    pub id: i64,
    pub item_name: String,
    pub description: String,
    pub initial_bid: i64,
    pub reserve: i64,
    pub expires_after_ms: i64,
    pub seller: i64,
    pub category: i64,
}

/// The auction of `event`; without `text` its item name and description
/// are left empty (their draws skipped, so every other field is the same).
pub(crate) fn auction(event: i64, rng: &mut EventRng, text: bool) -> Auction {
    let id = last_base0_auction_id(event) + FIRST_AUCTION_ID;
    let seller = if rng.below(HOT_SELLER_RATIO as u64) > 0 {
        (last_base0_person_id(event) / HOT_SELLER_RATIO) * HOT_SELLER_RATIO
    } else {
        next_base0_person_id(event, rng)
    } + FIRST_PERSON_ID;
    let category = FIRST_CATEGORY_ID + rng.below(NUM_CATEGORIES) as i64;
    let initial_bid = next_price(rng);
    let reserve = initial_bid + next_price(rng);
    let (item_name, description) = if text {
        (word(rng, 12), word(rng, 30))
    } else {
        rng.skip(12 + 30);
        (String::new(), String::new())
    };
    Auction {
        id,
        item_name,
        description,
        initial_bid,
        reserve,
        expires_after_ms: 10_000 + rng.below(20_000) as i64,
        seller,
        category,
    }
}

/// A person's fields.
pub(crate) struct Person {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub credit_card: String,
    pub city: &'static str,
    pub state: &'static str,
}

pub(crate) fn person(event: i64, rng: &mut EventRng) -> Person {
    let name = format!("{} {}", rng.pick(&FIRST_NAMES), rng.pick(&LAST_NAMES));
    let email = format!("{}@{}.com", word(rng, 7), word(rng, 5));
    let credit_card = (0..4)
        .map(|_| format!("{:04}", rng.below(10_000)))
        .collect::<Vec<_>>()
        .join(" ");
    Person {
        id: last_base0_person_id(event) + FIRST_PERSON_ID,
        name,
        email,
        credit_card,
        city: rng.pick(&CITIES),
        state: rng.pick(&STATES),
    }
}

fn word(rng: &mut EventRng, len: usize) -> String {
    (0..len)
        .map(|_| (b'a' + rng.below(26) as u8) as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skipping_the_text_keeps_the_other_fields() {
        for n in [1, 2, 3, 51, 1001] {
            let full = auction(n, &mut EventRng::new(7, n), true);
            let bare = auction(n, &mut EventRng::new(7, n), false);
            assert_eq!(full.expires_after_ms, bare.expires_after_ms);
            assert_eq!((full.seller, full.category), (bare.seller, bare.category));
            assert!(bare.item_name.is_empty() && !full.item_name.is_empty());
        }
    }

    #[test]
    fn proportions_and_ids() {
        let kinds: Vec<Kind> = (0..50).map(kind).collect();
        assert_eq!(kinds.iter().filter(|k| **k == Kind::Person).count(), 1);
        assert_eq!(kinds.iter().filter(|k| **k == Kind::Auction).count(), 3);
        assert_eq!(kinds.iter().filter(|k| **k == Kind::Bid).count(), 46);
        // Event 0 is person 1000; events 1..=3 are auctions 1000..=1002;
        // event 50 is person 1001 and 51 auction 1003.
        let mut r = EventRng::new(0, 0);
        assert_eq!(person(0, &mut r).id, 1000);
        assert_eq!(auction(1, &mut r, true).id, 1000);
        assert_eq!(auction(3, &mut r, true).id, 1002);
        assert_eq!(person(50, &mut r).id, 1001);
        assert_eq!(auction(51, &mut r, true).id, 1003);
    }

    #[test]
    fn bids_refer_to_existing_or_soon_auctions_and_are_deterministic() {
        for n in (0..100_000).filter(|n| kind(*n) == Kind::Bid) {
            let b = bid(n, &mut EventRng::new(7, n));
            let again = bid(n, &mut EventRng::new(7, n));
            assert_eq!(
                (b.auction, b.bidder, b.price),
                (again.auction, again.bidder, again.price)
            );
            let newest = last_base0_auction_id(n) + FIRST_AUCTION_ID;
            assert!(
                b.auction <= newest + AUCTION_ID_LEAD,
                "bid {n} auction {}",
                b.auction
            );
            assert!(
                b.price >= 100 && b.price <= 100_000_000,
                "price {}",
                b.price
            );
        }
    }
}
