//! `spangen`: see the library's documentation, or `spangen --help`.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let args = spangen::Args::parse();
    let report = match spangen::run(&args) {
        Ok(finished) => finished.report,
        Err(error) => {
            eprintln!("spangen: {error}");
            return ExitCode::from(2);
        }
    };
    let mut stdout = std::io::stdout().lock();
    let written = if args.json {
        serde_json::to_writer_pretty(&mut stdout, &report).map_err(std::io::Error::from).and_then(|()| writeln!(stdout))
    } else {
        stdout.write_all(report.text().as_bytes())
    };
    if let Err(error) = written {
        eprintln!("spangen: writing the report: {error}");
        return ExitCode::from(2);
    }
    let verify_failed = report.verify.as_ref().is_some_and(|verify| !verify.is_exact());
    if verify_failed || (report.has_request_errors() && !args.allow_errors) {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
