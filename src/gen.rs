//! A seeded generator of realistic email accounts.
