using System.Runtime.InteropServices;
using RecDistill.Runs;
using RecDistill.Training;

namespace RecDistill.Cli;

/// <summary>
/// Ctrl+C (SIGINT) and SIGTERM for the commands that train: the first signal cancels the workflow, which
/// stops at its next batch with its last checkpoint kept; the command then says on standard error how to
/// continue and exits with <see cref="ExitCode"/>. A second signal ends the process at once, as any signal
/// did before (a step that does not check the token, such as loading a large dataset, need not be waited for).
/// </summary>
public sealed class StopSignals : IDisposable
{
    /// <summary>The exit code of a command stopped by a signal: the shell's code for SIGINT (128 + 2).</summary>
    public const int ExitCode = 130;

    private readonly CancellationTokenSource _source;
    private readonly List<PosixSignalRegistration> _registrations = new();

    private StopSignals(CancellationToken outer)
    {
        _source = CancellationTokenSource.CreateLinkedTokenSource(outer);
        // Spectre.Console.Cli passes a token but wires no signal to it: SIGINT and SIGTERM are handled here.
        foreach (var signal in new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM })
        {
            try { _registrations.Add(PosixSignalRegistration.Create(signal, OnSignal)); }
            catch (PlatformNotSupportedException) { } // the signal keeps its default: it ends the process
        }
    }

    private void OnSignal(PosixSignalContext context)
    {
        if (_source.IsCancellationRequested) return; // the second one: the default, the process ends
        context.Cancel = true;
        try { _source.Cancel(); }
        catch (ObjectDisposedException) { } // the command has just ended

    }

    /// <summary>
    /// Runs <paramref name="body"/> with a token that Ctrl+C, SIGTERM and <paramref name="cancellationToken"/>
    /// cancel; a workflow stopped by it gives one line, "stopped: " and <paramref name="howToContinue"/>, and <see cref="ExitCode"/>.
    /// </summary>
    public static int Run(CancellationToken cancellationToken, Func<string> howToContinue, Func<CancellationToken, int> body)
    {
        using var signals = new StopSignals(cancellationToken);
        try
        {
            return body(signals._source.Token);
        }
        catch (OperationCanceledException) when (signals._source.IsCancellationRequested)
        {
            CliErrors.ReportStopped(howToContinue());
            return ExitCode;
        }
    }

    /// <summary>What a stopped train or distill run leaves, and the command that continues it.</summary>
    public static string ResumeHint(string command, string dir)
    {
        // Stopped before the directory was prepared: nothing to resume.
        if (!File.Exists(Path.Combine(dir, ResumableRun.ArgsFile))) return $"nothing was written to {dir}; run the same command again";
        bool checkpoint = File.Exists(Path.Combine(dir, TrainingCheckpoint.FileName));
        // An overwriting run stopped before it prepared the directory leaves the earlier finished run as it was.
        if (RunDirectory.IsFinished(dir) && !checkpoint)
            return $"{dir} still holds its earlier finished run (this one stopped before replacing it); run the same command again";
        return checkpoint
            ? $"{dir} keeps its checkpoint; continue with recdistill {command} --resume {dir}"
            : $"{dir} has no checkpoint yet; recdistill {command} --resume {dir} starts it again from its first epoch";
    }

    /// <summary>Drops the signal handlers: a signal ends the process again.</summary>
    public void Dispose()
    {
        foreach (var registration in _registrations) registration.Dispose();
        _source.Dispose();
    }
}
