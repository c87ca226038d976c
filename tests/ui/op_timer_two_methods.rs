use stoat::prelude::*;

struct Reminder;

#[stoat::operator]
impl Reminder {
    fn order(&self, #[key] _user: &String, at: i64, timers: &mut Timers) -> Result<Option<String>, StoreError> {
        timers.at(at)?;
        Ok(None)
    }
    #[on_timer]
    fn remind(&self, #[key] user: &String, timer: Timer) -> String {
        format!("{user} {}", timer.time())
    }
    #[on_timer]
    fn again(&self, #[key] user: &String, timer: Timer) -> String {
        format!("{user} {}", timer.time())
    }
}

fn main() {}
