namespace RecDistill.Kernels;

/// <summary>
/// The one place that decides whether hand-written kernels run (<see cref="RecDistill.Runs.KernelChoice"/>).
/// Every call site asks <see cref="Accelerated"/> and the kernel's own <c>Supports</c> check, and otherwise
/// runs the method's plain tensor form. The choice flows with the caller (an AsyncLocal), so a workflow's
/// setting holds for everything it runs, including Parallel.For workers, and tests can compare both
/// forms in one process.
/// </summary>
internal static class KernelSwitch
{
    private static readonly AsyncLocal<RecDistill.Runs.KernelChoice?> Choice = new();

    public static bool Accelerated => (Choice.Value ?? RecDistill.Runs.KernelChoice.Accelerated) == RecDistill.Runs.KernelChoice.Accelerated;

    /// <summary>Sets the choice until the returned scope is disposed (then the previous one holds again).</summary>
    public static Scope Use(RecDistill.Runs.KernelChoice choice)
    {
        var previous = Choice.Value;
        Choice.Value = choice;
        return new Scope(previous);
    }

    /// <summary>For tests: plain tensor forms when <paramref name="accelerated"/> is false.</summary>
    public static Scope Use(bool accelerated) => Use(accelerated ? RecDistill.Runs.KernelChoice.Accelerated : RecDistill.Runs.KernelChoice.Plain);

    public readonly struct Scope(RecDistill.Runs.KernelChoice? previous) : IDisposable
    {
        public void Dispose() => Choice.Value = previous;
    }
}
