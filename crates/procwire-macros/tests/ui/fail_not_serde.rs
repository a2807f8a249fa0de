use procwire_remoting::remote;

pub struct NotSerde;

#[remote]
pub trait Bad {
    async fn take(&self, value: NotSerde) -> u32;
}

fn main() {}
