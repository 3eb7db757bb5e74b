using RecDistill.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Distillation;

/// <summary>
/// One term of a batch's loss, a function of the looked-up student vectors. The trainer computes the
/// gradients of a batch's terms apart, on different threads, and adds them (<see cref="Training.LossTermLanes"/>).
/// </summary>
public sealed record LossTerm(string Name, Func<EmbeddingLookup, Tensor> Loss);

/// <summary>
/// The generator that the losses' random draws on this thread come from: libtorch's default one,
/// unless the trainer has given the loss term being computed its own (so that terms computed on
/// different threads draw the same numbers whichever thread runs first).
/// </summary>
public static class LossGenerator
{
    [ThreadStatic] private static Generator? t_current;

    /// <summary>This thread's generator for draws on the given device; null for libtorch's default.</summary>
    public static Generator? For(Device device) =>
        t_current is { } g && g.device.type == device.type ? g : null;

    /// <summary>Draws on this thread come from <paramref name="generator"/> (null: the default) until the scope ends.</summary>
    public static Scope Use(Generator? generator)
    {
        var previous = t_current;
        t_current = generator;
        return new Scope(previous);
    }

    public readonly struct Scope(Generator? previous) : IDisposable
    {
        public void Dispose() => t_current = previous;
    }
}
