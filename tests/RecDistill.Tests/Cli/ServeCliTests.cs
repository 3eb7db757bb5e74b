using System.Diagnostics;
using System.Net;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using RecDistill.Cli;
using RecDistill.Serving;

namespace RecDistill.Tests.Cli;

/// <summary>`recdistill serve` as a user runs it: mistakes are one line and exit 2; SIGTERM stops it with exit 0.</summary>
public class ServeCliTests
{
    private static string WriteModel(string dir)
    {
        var rng = new Random(4);
        int users = 5, items = 30, dim = 4;
        var model = CompactModel.Create(ModelBackbone.Bpr, 0, dim,
            Enumerable.Range(0, users * dim).Select(_ => (float)rng.NextDouble()).ToArray(),
            Enumerable.Range(0, items * dim).Select(_ => (float)rng.NextDouble()).ToArray(),
            Enumerable.Range(1, users).Select(u => u.ToString()).ToArray(), Enumerable.Range(1, items).Select(i => i.ToString()).ToArray(),
            Enumerable.Range(0, users).Select(u => (IReadOnlyList<int>)new[] { u, u + 1 }).ToArray(), VectorPrecision.Fp32);
        var path = Path.Combine(dir, "student.rdm");
        model.Save(path);
        return path;
    }

    [Fact]
    public void A_missing_or_damaged_model_is_one_line_and_exit_2()
    {
        var dir = TestData.TempDir();
        Assert.Equal(2, CliApp.Run(new[] { "serve", "--model", Path.Combine(dir, "none.rdm"), "--urls", "http://127.0.0.1:0" }));
        Assert.Equal(2, CliApp.Run(new[] { "serve", "--model", dir, "--urls", "http://127.0.0.1:0" }));
        var path = WriteModel(dir);
        var bytes = File.ReadAllBytes(path);
        bytes[^1] ^= 1;
        File.WriteAllBytes(path, bytes);
        Assert.Equal(2, CliApp.Run(new[] { "serve", "--model", path, "--urls", "http://127.0.0.1:0" }));
        Assert.Equal(2, CliApp.Run(new[] { "serve", "--model", path, "--index", "fast" }));
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);

    [Fact]
    public async Task Sigterm_stops_the_server_gracefully_with_exit_code_0()
    {
        if (!OperatingSystem.IsLinux()) return;
        var model = WriteModel(TestData.TempDir());
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "RecDistill.Cli.dll"), "serve", "--model", model, "--urls", "http://127.0.0.1:0" })
            start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var output = new System.Text.StringBuilder();
        var listening = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (output) output.AppendLine(e.Data);
            var m = Regex.Match(e.Data, @"Now listening on: (http://127\.0\.0\.1:\d+)");
            if (m.Success) listening.TrySetResult(m.Groups[1].Value);
        };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            var url = await listening.Task.WaitAsync(TimeSpan.FromSeconds(60));
            using var client = new HttpClient { BaseAddress = new Uri(url) };
            using (var health = await client.GetAsync("/health"))
                Assert.Equal(HttpStatusCode.OK, health.StatusCode);
            using (var top = await client.GetAsync("/v1/users/2/recommendations?k=3"))
                Assert.Equal(HttpStatusCode.OK, top.StatusCode);

            // A second server on the same address: one error line and exit code 2, no stack trace.
            var second = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "RecDistill.Cli.dll"), "serve", "--model", model, "--urls", url })
                second.ArgumentList.Add(a);
            using (var busy = Process.Start(second)!)
            {
                var busyOut = busy.StandardOutput.ReadToEndAsync();
                var busyErrors = await busy.StandardError.ReadToEndAsync();
                await busy.WaitForExitAsync();
                Assert.Equal(2, busy.ExitCode);
                Assert.Equal(new[] { $"error: Failed to bind to address {url}: address already in use." }, busyErrors.Split('\n', StringSplitOptions.RemoveEmptyEntries));
                Assert.DoesNotContain("   at ", await busyOut);
            }
            Assert.Equal(0, kill(process.Id, 15)); // SIGTERM
            Assert.True(process.WaitForExit(30_000), "the server did not stop after SIGTERM");
            process.WaitForExit();
            lock (output)
            {
                Assert.True(process.ExitCode == 0, $"exit {process.ExitCode}: {output}");
                Assert.Contains("Application is shutting down", output.ToString());
            }
        }
        finally
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
        }
    }
}
