using RecDistill;
using RecDistill.Cli;
using Spectre.Console;

// Before anything loads libtorch: its OpenMP workers sleep when idle unless the user chose otherwise.
ThreadTuning.PreferSleepingWorkers();
// Denormal floats flushed to zero on this thread, and so on the threads it starts (libtorch's workers).
DenormalFlush.OnThisThread();

// RECDISTILL_FINALIZER_STRESS=1: finalizers run all the time (a reliability check: docs/reliability.md).
if (Environment.GetEnvironmentVariable("RECDISTILL_FINALIZER_STRESS") == "1")
    new Thread(() => { while (true) { GC.Collect(); GC.WaitForPendingFinalizers(); } }) { IsBackground = true, Name = "finalizer stress" }.Start();

// Redirected output (logs, CI) gets wide enough tables instead of an 80-column wrap.
if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 160;
return CliApp.Run(args);
