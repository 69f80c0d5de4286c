use forja::Pool;

fn main() {
    let pool = Pool::new(1).unwrap();
    let k = 3u64;
    let _ = pool.starmap(move |a: u64, b: u64| k * a + b, vec![(1, 2)]);
}
