use forja::Pool;

fn main() {
    let pool = Pool::builder().processes(1).context(1u64).build().unwrap();
    let names = vec!["a".to_string()];
    let _ = pool
        .with_context()
        .map(move |k: &u64, i: usize| names[i].len() as u64 + k, 0..1usize);
}
