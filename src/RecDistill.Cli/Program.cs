using RecDistill.Cli;
using Spectre.Console;

// Redirected output (logs, CI) gets wide enough tables instead of an 80-column wrap.
if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 160;
return CliApp.Run(args);
