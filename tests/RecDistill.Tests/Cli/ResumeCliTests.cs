using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using RecDistill.Cli;
using RecDistill.Training;

namespace RecDistill.Tests.Cli;

public class ResumeCliTests
{
    private static readonly string[] Args =
    {
        "--synthetic-users", "300", "--synthetic-items", "400", "--dim", "16", "--epochs", "40", "--eval-every", "2",
        "--patience", "50", "--lr", "0.01", "--batch-size", "64", "--threads", "1",
    };

    private static JsonNode Metrics(string dir) => JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "metrics.json")))!;

    [Fact]
    public void The_stop_hint_names_what_the_directory_holds()
    {
        var dir = Path.Combine(TestData.TempDir(), "run");
        Assert.StartsWith("nothing was written", StopSignals.ResumeHint("train", dir));
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, ResumableRun.ArgsFile), "{}");
        Assert.Contains("starts it again from its first epoch", StopSignals.ResumeHint("train", dir));
        File.WriteAllBytes(Path.Combine(dir, TrainingCheckpoint.FileName), new byte[] { 1 });
        Assert.Contains("continue with recdistill train --resume", StopSignals.ResumeHint("train", dir));
        // An earlier finished run that an --overwrite stopped before replacing it: a resume would be refused.
        File.Delete(Path.Combine(dir, TrainingCheckpoint.FileName));
        File.WriteAllText(Path.Combine(dir, "metrics.json"), "{}");
        Assert.Contains("still holds its earlier finished run", StopSignals.ResumeHint("train", dir));
    }

    [Fact]
    public void Threads_given_again_replace_only_the_saved_threads_not_other_options_of_the_same_value()
    {
        var dir = TestData.TempDir();
        ResumableRun.Record(dir, "train", new[] { "--negatives", "1", "--threads", "1", "--seed", "1", "--dim=1", "--out", dir });
        // (ExpandResume marks the process as resuming DIR; CliApp.Run clears that at its start.)
        var expanded = ResumableRun.ExpandResume(new[] { "train", "--resume", dir, "--threads", "2" });
        Assert.Equal(new[] { "train", "--negatives", "1", "--seed", "1", "--dim=1", "--threads", "2", "--out", dir }, expanded);
        expanded = ResumableRun.ExpandResume(new[] { "train", "--resume", dir, "--threads=1" });
        Assert.Equal(new[] { "train", "--negatives", "1", "--seed", "1", "--dim=1", "--threads=1", "--out", dir }, expanded);
    }

    /// <summary>`train --out DIR` with <see cref="Args"/> in a separate process; its standard error lines go to <paramref name="errors"/>.</summary>
    private static Process StartTrain(string dir, List<string> errors)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "RecDistill.Cli.dll"), "train", "--out", dir }.Concat(Args))
            psi.ArgumentList.Add(a);
        var p = Process.Start(psi)!;
        p.OutputDataReceived += (_, _) => { };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (errors) errors.Add(e.Data); };
        p.BeginOutputReadLine(); p.BeginErrorReadLine();
        return p;
    }

    /// <summary>Waits until the process has checkpointed epoch 5; it must still be running then.</summary>
    private static void WaitForFifthEpoch(Process p, string dir)
    {
        var state = Path.Combine(dir, TrainingCheckpoint.FileName);
        var clock = Stopwatch.StartNew();
        while (!p.HasExited && clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            if (File.Exists(state) && TrainingCheckpoint.Load(state).Header.Epoch >= 5) break;
            Thread.Sleep(20);
        }
        Assert.False(p.HasExited, "the run finished before it could be stopped; make it longer");
    }

    /// <summary>The interrupted run in <paramref name="cut"/> has a checkpoint and no metrics; resumed, it ends as <paramref name="whole"/>.</summary>
    private static void AssertResumesTo(string whole, string cut)
    {
        Assert.False(File.Exists(Path.Combine(cut, "metrics.json")));
        Assert.InRange(TrainingCheckpoint.Load(Path.Combine(cut, TrainingCheckpoint.FileName)).Header.Epoch, 5, 39);
        Assert.Equal(0, CliApp.Run(new[] { "train", "--resume", cut }));
        var a1 = Metrics(whole);
        var b1 = Metrics(cut);
        Assert.Equal((int)a1["best_epoch"]!, (int)b1["best_epoch"]!);
        Assert.Equal(a1["valid"]!.ToJsonString(), b1["valid"]!.ToJsonString());
        Assert.Equal(a1["test"]!.ToJsonString(), b1["test"]!.ToJsonString());
        Assert.False(File.Exists(Path.Combine(cut, TrainingCheckpoint.FileName)));
    }

    [Fact]
    public void A_killed_train_process_resumed_ends_with_the_metrics_of_an_uninterrupted_run()
    {
        var root = TestData.TempDir();
        var whole = Path.Combine(root, "whole");
        Assert.Equal(0, CliApp.Run(new[] { "train", "--out", whole }.Concat(Args).ToArray()));

        // The same run in a separate process, killed (SIGKILL) once a few epochs are checkpointed.
        var cut = Path.Combine(root, "cut");
        using (var p = StartTrain(cut, new List<string>()))
        {
            WaitForFifthEpoch(p, cut);
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
        }
        AssertResumesTo(whole, cut);

        // A finished run is not resumed again; other options cannot be slipped into a resume.
        Assert.Equal(2, CliApp.Run(new[] { "train", "--resume", cut }));
        Assert.Equal(2, CliApp.Run(new[] { "train", "--resume", whole, "--lr", "0.5" }));
        Assert.Equal(2, CliApp.Run(new[] { "distill", "--resume", whole }));
        Assert.Equal(2, CliApp.Run(new[] { "train", "--resume", Path.Combine(root, "nowhere") }));
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);

    /// <summary>
    /// Whether this process ignores SIGINT, as commands started in the background by a shell without job control
    /// do; the child inherits it, so the test sends SIGTERM, which the command handles the same way.
    /// </summary>
    private static bool SigintIgnored()
    {
        var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("SigIgn:", StringComparison.Ordinal));
        return line is not null && (Convert.ToUInt64(line["SigIgn:".Length..].Trim(), 16) & (1UL << (2 - 1))) != 0;
    }

    [Fact]
    public void Sigint_stops_a_train_process_with_exit_code_130_and_a_resume_ends_as_an_uninterrupted_run()
    {
        if (!OperatingSystem.IsLinux()) return;
        var root = TestData.TempDir();
        var whole = Path.Combine(root, "whole");
        Assert.Equal(0, CliApp.Run(new[] { "train", "--out", whole }.Concat(Args).ToArray()));

        // The same run stopped as Ctrl+C stops it: at its next batch, keeping its checkpoint.
        var cut = Path.Combine(root, "cut");
        var errors = new List<string>();
        using (var p = StartTrain(cut, errors))
        {
            try
            {
                WaitForFifthEpoch(p, cut);
                Assert.Equal(0, kill(p.Id, SigintIgnored() ? 15 : 2)); // SIGINT, or SIGTERM where SIGINT is ignored
                Assert.True(p.WaitForExit(60_000), "the run did not stop after SIGINT");
                p.WaitForExit(); // its output read to the end
            }
            finally
            {
                if (!p.HasExited) p.Kill(entireProcessTree: true);
            }
            lock (errors)
            {
                // (A process killed by SIGINT also reads as 130 here: the "stopped:" line tells the two apart.)
                Assert.True(p.ExitCode == 130, $"exit {p.ExitCode}: {string.Join('\n', errors)}");
                Assert.Equal(new[] { $"stopped: {cut} keeps its checkpoint; continue with recdistill train --resume {cut}" },
                    errors.Where(line => line.StartsWith("stopped:", StringComparison.Ordinal)));
                Assert.DoesNotContain(errors, line => line.Contains("   at "));
            }
        }
        AssertResumesTo(whole, cut);
    }
}
