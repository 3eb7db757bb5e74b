using RecDistill.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Distillation;

/// <summary>
/// One term of a batch's loss, a function of the looked-up student vectors. The trainer computes the
/// gradients of a batch's terms apart, on different threads, and adds them (<see cref="Training.LossTermLanes"/>).
/// </summary>
/// <param name="Name">The term's name ("cpd features", "nkd 1/2"): history.csv's loss_ and grad_
/// columns, spaces as underscores, a shard's "k/n" left out.</param>
/// <param name="Loss">The term's weighted loss (a scalar) from the batch's looked-up student vectors.</param>
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

    /// <summary>Returned by <see cref="Use"/>: restores this thread's previous generator when disposed.</summary>
    public readonly struct Scope(Generator? previous) : IDisposable
    {
        /// <summary>Restores what was current before <c>Use</c>.</summary>
        public void Dispose() => t_current = previous;
    }
}

/// <summary>
/// Leaf copies of the distillation parameters for the loss term being computed on this thread: a
/// term's backward pass accumulates into its own copies, so that terms on different threads never add
/// into one parameter's gradient at the same time (the trainer then adds the copies' gradients in term
/// order: the sum of three or more terms does not depend on which thread finished first). Modules read
/// their parameters through <see cref="Resolve"/>.
/// </summary>
public static class ParameterAliases
{
    [ThreadStatic] private static Dictionary<Tensor, Tensor>? t_current;

    /// <summary>This thread's copy of <paramref name="parameter"/>, or the parameter itself outside a term's scope.</summary>
    public static Tensor Resolve(Tensor parameter) =>
        t_current is { } map && map.TryGetValue(parameter, out var alias) ? alias : parameter;

    /// <summary>Until the scope ends, <see cref="Resolve"/> maps each of <paramref name="parameters"/> to the same-index copy.</summary>
    public static Scope Use(IReadOnlyList<Tensor> parameters, IReadOnlyList<Tensor> copies)
    {
        var previous = t_current;
        var map = new Dictionary<Tensor, Tensor>(ReferenceEqualityComparer.Instance);
        for (int k = 0; k < parameters.Count; k++) map[parameters[k]] = copies[k];
        t_current = map;
        return new Scope(previous);
    }

    /// <summary>Returned by <see cref="Use"/>: restores this thread's previous copies when disposed.</summary>
    public readonly struct Scope(Dictionary<Tensor, Tensor>? previous) : IDisposable
    {
        /// <summary>Restores what was current before <c>Use</c>.</summary>
        public void Dispose() => t_current = previous;
    }
}
