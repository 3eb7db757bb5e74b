using System.Diagnostics;
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

    [Fact]
    public void A_killed_train_process_resumed_ends_with_the_metrics_of_an_uninterrupted_run()
    {
        var root = TestData.TempDir();
        var whole = Path.Combine(root, "whole");
        Assert.Equal(0, CliApp.Run(new[] { "train", "--out", whole }.Concat(Args).ToArray()));

        // The same run in a separate process, killed (SIGKILL) once a few epochs are checkpointed.
        var cut = Path.Combine(root, "cut");
        var cli = Path.Combine(AppContext.BaseDirectory, "RecDistill.Cli.dll");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { cli, "train", "--out", cut }.Concat(Args)) psi.ArgumentList.Add(a);
        using (var p = Process.Start(psi)!)
        {
            p.OutputDataReceived += (_, _) => { };
            p.ErrorDataReceived += (_, _) => { };
            p.BeginOutputReadLine(); p.BeginErrorReadLine();
            var state = Path.Combine(cut, TrainingCheckpoint.FileName);
            var clock = Stopwatch.StartNew();
            while (!p.HasExited && clock.Elapsed < TimeSpan.FromSeconds(60))
            {
                if (File.Exists(state) && TrainingCheckpoint.Load(state).Header.Epoch >= 5) break;
                Thread.Sleep(20);
            }
            Assert.False(p.HasExited, "the run finished before it could be killed; make it longer");
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
        }
        Assert.False(File.Exists(Path.Combine(cut, "metrics.json")));
        int reached = TrainingCheckpoint.Load(Path.Combine(cut, TrainingCheckpoint.FileName)).Header.Epoch;
        Assert.InRange(reached, 5, 39);

        Assert.Equal(0, CliApp.Run(new[] { "train", "--resume", cut }));
        var a1 = Metrics(whole);
        var b1 = Metrics(cut);
        Assert.Equal((int)a1["best_epoch"]!, (int)b1["best_epoch"]!);
        Assert.Equal(a1["valid"]!.ToJsonString(), b1["valid"]!.ToJsonString());
        Assert.Equal(a1["test"]!.ToJsonString(), b1["test"]!.ToJsonString());
        Assert.False(File.Exists(Path.Combine(cut, TrainingCheckpoint.FileName)));

        // A finished run is not resumed again; other options cannot be slipped into a resume.
        Assert.Equal(2, CliApp.Run(new[] { "train", "--resume", cut }));
        Assert.Equal(2, CliApp.Run(new[] { "train", "--resume", whole, "--lr", "0.5" }));
        Assert.Equal(2, CliApp.Run(new[] { "distill", "--resume", whole }));
        Assert.Equal(2, CliApp.Run(new[] { "train", "--resume", Path.Combine(root, "nowhere") }));
    }
}
