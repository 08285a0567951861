fn main() -> std::process::ExitCode {
    airinfer_sim::cli::main()
}
