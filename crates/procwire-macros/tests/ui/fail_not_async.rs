use procwire_remoting::remote;

#[remote]
pub trait Bad {
    fn not_async(&self) -> u32;
}

fn main() {}
