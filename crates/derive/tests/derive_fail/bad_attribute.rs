// Misspelt attributes and dotted names are errors, not silently ignored.
#[derive(cepheid_engine::Event)]
struct Login {
    #[cepheid(renam = "user")]
    user_name: String,
}

#[derive(cepheid_engine::Event)]
struct Logout {
    #[cepheid(rename = "user.name")]
    user_name: String,
}

fn main() {}
