using RecDistill.Training;

namespace RecDistill.Runs;

/// <summary>
/// What a workflow tells its caller while it runs: the CLI draws progress bars from it, a service may
/// log it, and <see cref="SilentReporter"/> ignores it.
/// </summary>
public interface IRunReporter
{
    /// <summary>A line of information (e.g. "resuming runs/mkd").</summary>
    void Message(string text);

    /// <summary>A step without progress of its own (loading data, preparing a method's teacher lists).</summary>
    T Step<T>(string description, Func<T> work);

    /// <summary>Training: <paramref name="fit"/> runs the trainer with the given progress callback.</summary>
    TrainResult Train(string label, int maxEpochs, Func<Action<TrainingProgress>, TrainResult> fit);
}

/// <summary>Reports nothing.</summary>
public sealed class SilentReporter : IRunReporter
{
    /// <summary>The one instance (it holds no state).</summary>
    public static SilentReporter Instance { get; } = new();
    /// <summary>Ignores the message.</summary>
    public void Message(string text) { }
    /// <summary>Runs the step and returns its result.</summary>
    public T Step<T>(string description, Func<T> work) => work();
    /// <summary>Runs the training with a progress callback that does nothing.</summary>
    public TrainResult Train(string label, int maxEpochs, Func<Action<TrainingProgress>, TrainResult> fit) => fit(_ => { });
}

/// <summary>Plain text lines: each step, and every validation during training.</summary>
public sealed class TextReporter(TextWriter writer) : IRunReporter
{
    /// <summary>Writes the message as a line.</summary>
    public void Message(string text) => writer.WriteLine(text);

    /// <summary>Writes the step's description as a line, then runs it.</summary>
    public T Step<T>(string description, Func<T> work)
    {
        writer.WriteLine(description);
        return work();
    }

    /// <summary>Runs the training and writes a line after every validation: epoch, loss, validation NDCG@20 and the best so far.</summary>
    public TrainResult Train(string label, int maxEpochs, Func<Action<TrainingProgress>, TrainResult> fit) => fit(p =>
    {
        if (p.AfterValidation && p.LastValid is not null)
            writer.WriteLine(FormattableString.Invariant(
                $"{label}: epoch {p.Epoch}/{maxEpochs} loss {p.EpochLoss:F4} valid ndcg@20 {p.LastValid.GetValueOrDefault("ndcg@20"):F4} (best {p.BestValid:F4} @{p.BestEpoch})"));
    });
}
