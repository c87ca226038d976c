//! The book's configuration reference is the one `Settings::reference` generates from the code:
//! this test fails when they differ (`STOAT_BLESS=1` rewrites the page).

const PAGE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/book/src/configuration.md");
const START: &str = "<!-- reference:start -->";
const END: &str = "<!-- reference:end -->";

#[test]
fn the_book_configuration_reference_is_generated_from_the_code() {
    let page = std::fs::read_to_string(PAGE).expect("the configuration page");
    let (Some(start), Some(end)) = (page.find(START), page.find(END)) else {
        panic!("{PAGE} has no {START} ... {END} section");
    };
    let generated = stoat::Settings::reference();
    let current = &page[start + START.len()..end];
    if current.trim() == generated.trim() {
        return;
    }
    if std::env::var_os("STOAT_BLESS").is_some() {
        let updated = format!("{}{START}\n{}\n{}", &page[..start], generated.trim(), &page[end..]);
        std::fs::write(PAGE, updated).expect("rewrite the configuration page");
        return;
    }
    panic!("{PAGE} is out of date: run `STOAT_BLESS=1 cargo test --test configuration`");
}
