use procwire_remoting::remote;

#[remote]
pub trait Bad {
    async fn change(&mut self) -> u32;
}

fn main() {}
