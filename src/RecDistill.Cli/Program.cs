using RecDistill.Cli;
using RecDistill.Runs;
using Spectre.Console;

// Before anything loads libtorch (OpenMP workers that sleep when idle; denormals flushed to zero).
ComputeOptions.PrepareProcess();

// RECDISTILL_FINALIZER_STRESS=1: finalizers run all the time (a reliability check: docs/reliability.md).
if (Environment.GetEnvironmentVariable("RECDISTILL_FINALIZER_STRESS") == "1")
    new Thread(() => { while (true) { GC.Collect(); GC.WaitForPendingFinalizers(); } }) { IsBackground = true, Name = "finalizer stress" }.Start();

// Redirected output (logs, CI) gets wide enough tables instead of an 80-column wrap.
if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 160;
return CliApp.Run(args);
