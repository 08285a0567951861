fn main() -> std::process::ExitCode {
    airinfer::cli::main()
}
