use procwire_remoting::remote;

#[remote]
pub trait Counter {
    async fn add(&self, n: u64) -> u64;
}

struct Impl;

impl Counter for Impl {
    async fn add(&self, n: u32) -> u64 {
        n as u64
    }
}

fn main() {}
