// `#[cepheid(time)]`: on one field only, an integer one, never flattened.
#[derive(cepheid_engine::Event)]
struct TwoTimes {
    #[cepheid(time)]
    sent: i64,
    #[cepheid(time)]
    received: i64,
}

#[derive(cepheid_engine::Event)]
struct TextTime {
    #[cepheid(time)]
    at: String,
    n: i64,
}

#[derive(cepheid_engine::Event)]
struct FloatTime {
    #[cepheid(time)]
    at: f64,
}

#[derive(cepheid_engine::Event)]
struct Inner {
    at: i64,
}

#[derive(cepheid_engine::Event)]
struct FlattenedTime {
    #[cepheid(time, flatten)]
    inner: Inner,
}

fn main() {}
