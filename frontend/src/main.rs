//! The page's entry point: report panics to the console, then mount the app.

use pixelator_frontend::App;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}
