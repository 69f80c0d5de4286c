use forja::Pool;

fn main() {
    let pool = Pool::new(1).unwrap();
    let greeting = String::from("hola");
    let _ = pool.apply(move |n: usize| greeting.repeat(n), 2);
}
