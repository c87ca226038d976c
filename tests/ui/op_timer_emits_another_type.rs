use stoat::prelude::*;

struct Reminder;

#[stoat::operator]
impl Reminder {
    fn order(&self, #[key] _user: &String, at: i64, timers: &mut Timers) -> Result<Option<String>, StoreError> {
        timers.at(at)?;
        Ok(None)
    }
    #[on_timer]
    fn remind(&self, #[key] _user: &String, timer: Timer) -> i64 {
        timer.time()
    }
}

fn main() {
    let topology = Topology::new("t");
    topology.stream::<String, i64>("in").process(Reminder).to("out");
}
