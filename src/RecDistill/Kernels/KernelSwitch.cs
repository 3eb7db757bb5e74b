namespace RecDistill.Kernels;

/// <summary>
/// The one place that decides whether a hand-written kernel runs (<see cref="RecDistill.Runs.KernelChoice"/>).
/// Every call site asks <see cref="Uses"/> with its kernel's name, then the kernel's own <c>Supports</c>
/// check, and otherwise runs the plain tensor form. The choice flows with the caller (an AsyncLocal), so
/// a workflow's setting holds for everything it runs, including Parallel.For workers, and tests can
/// compare both forms in one process.
/// </summary>
internal static class KernelSwitch
{
    public const string Sgemm = "sgemm";
    public const string ListScores = "list-scores";
    public const string NkdLoss = "nkd-loss";
    public const string HtdLoss = "htd-loss";
    public const string GraphPropagation = "graph-propagation";

    private static readonly AsyncLocal<RecDistill.Runs.KernelChoice?> Choice = new();

    public static RecDistill.Runs.KernelChoice Current => Choice.Value ?? RecDistill.Runs.KernelChoice.Accelerated;

    /// <summary>Whether the named kernel may run (it still checks that it supports the tensors at hand).</summary>
    public static bool Uses(string kernel) => Current.Uses(kernel);

    /// <summary>Sets the choice until the returned scope is disposed (then the previous one holds again).</summary>
    public static Scope Use(RecDistill.Runs.KernelChoice choice)
    {
        var previous = Choice.Value;
        Choice.Value = choice;
        return new Scope(previous);
    }

    /// <summary>For tests: every kernel, or none.</summary>
    public static Scope Use(bool accelerated) => Use(accelerated ? RecDistill.Runs.KernelChoice.Accelerated : RecDistill.Runs.KernelChoice.Plain);

    public readonly struct Scope(RecDistill.Runs.KernelChoice? previous) : IDisposable
    {
        public void Dispose() => Choice.Value = previous;
    }
}
