use stoat::prelude::*;

struct Reminder;

#[stoat::operator]
impl Reminder {
    fn order(&self, #[key] _user: &String, at: i64, timers: &mut Timers) -> Result<Option<String>, StoreError> {
        timers.at(at)?;
        Ok(None)
    }
    #[on_timer]
    fn remind(&self, #[key] user: &String, at: i64) -> String {
        format!("{user} {at}")
    }
}

fn main() {}
