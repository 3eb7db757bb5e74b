using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RecDistill.Training;

/// <summary>
/// Adam over whole parameters (LightGCN's tables, the distillation methods' projectors and experts),
/// with L2 weight decay added to the gradient as torch's Adam does. Each parameter is stepped by
/// <see cref="RowSparseAdam"/>'s fused in-place pass over all of its rows. The plain form
/// (<see cref="TrainOptions.PlainAdam"/>, the benchmarks' baseline) runs torch's Adam as its sequence
/// of tensor operations, about ten per parameter and step, with every Scalar held for the step.
/// TorchSharp's own Adam is not used: it creates Scalars that its finalizer may free while libtorch
/// still reads them (see FixedScalars).
/// </summary>
public sealed class DenseAdam : IDisposable
{
    private readonly List<(Parameter Parameter, Tensor Rows, RowSparseAdam Optimizer)> _parts = new();
    private readonly List<PlainState> _plain = new();
    private readonly double _lr, _weightDecay;
    private const double Beta1 = 0.9, Beta2 = 0.999, Eps = 1e-8;

    private sealed class PlainState(Parameter parameter)
    {
        public readonly Parameter Parameter = parameter;
        public Tensor M = torch.zeros_like(parameter).DetachFromDisposeScope();
        public Tensor V = torch.zeros_like(parameter).DetachFromDisposeScope();
        public long Steps;
    }

    /// <summary>Adam over <paramref name="parameters"/>; <paramref name="plain"/> chooses torch's Adam as plain tensor operations.</summary>
    public DenseAdam(IReadOnlyList<Parameter> parameters, double lr, double weightDecay, bool plain = false)
    {
        _lr = lr; _weightDecay = weightDecay;
        foreach (var p in parameters)
        {
            if (plain) { _plain.Add(new PlainState(p)); continue; }
            // A 2-d view on the parameter's storage: rows of its last dimension (one row for a vector).
            var rows = p.dim() >= 2 ? p.detach().view(-1, p.shape[^1]) : p.detach().view(1, -1);
            _parts.Add((p, rows, new RowSparseAdam(rows, lr, weightDecay)));
        }
    }

    /// <summary>
    /// Drops the gradients instead of filling them with zeros, so that the next backward pass hands its
    /// gradient over instead of adding it to zeros: for a LightGCN teacher's 3 million weights the fill
    /// and the addition were two passes over 12 MB per batch. <see cref="Step"/> still steps a parameter
    /// that had a gradient before and got none in this batch with zeros, as torch's zeroed gradients do.
    /// </summary>
    public void ZeroGrad()
    {
        foreach (var (p, _, _) in _parts) p.grad = null;
        foreach (var s in _plain) s.Parameter.grad = null;
    }

    /// <summary>One step for every parameter that has had a gradient (the others keep their step count, as in torch).</summary>
    public void Step()
    {
        using var _ = torch.no_grad();
        foreach (var (p, rows, optimizer) in _parts)
        {
            using var grad = p.grad;
            if (grad is null && optimizer.Steps == 0) continue;
            using var gradRows = grad is null ? torch.zeros(rows.shape, device: rows.device) : grad.reshape(rows.shape);
            optimizer.StepAll(gradRows);
        }
        foreach (var s in _plain) StepPlain(s);
    }

    /// <summary>torch's Adam for one parameter: m, v, bias corrections, then p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps).</summary>
    private void StepPlain(PlainState s)
    {
        using var scope = torch.NewDisposeScope();
        var grad = s.Parameter.grad;
        if (grad is null && s.Steps == 0) return;
        grad ??= torch.zeros_like(s.Parameter);
        s.Steps++;
        double bc1 = 1 - Math.Pow(Beta1, s.Steps), bc2 = 1 - Math.Pow(Beta2, s.Steps);
        using Scalar decay = _weightDecay, beta1 = Beta1, oneMinusBeta1 = 1 - Beta1, beta2 = Beta2,
            oneMinusBeta2 = 1 - Beta2, sqrtBc2 = Math.Sqrt(bc2), eps = Eps, stepSize = -(_lr / bc1);
        if (_weightDecay != 0) grad = grad.add(s.Parameter, alpha: decay);
        s.M.mul_(beta1).add_(grad, alpha: oneMinusBeta1);
        s.V.mul_(beta2).addcmul_(grad, grad, value: oneMinusBeta2);
        var denom = s.V.sqrt().div(sqrtBc2).add_(eps, alpha: FixedScalars.Of(1));
        s.Parameter.detach().addcdiv_(s.M, denom, value: stepSize);
    }

    /// <summary>The moments, by name, for a checkpoint.</summary>
    public IEnumerable<(string Name, Tensor Value)> StateTensors =>
        _parts.SelectMany((x, k) => new[] { ($"dense.{k}.m", x.Optimizer.FirstMoment), ($"dense.{k}.v", x.Optimizer.SecondMoment) })
            .Concat(_plain.SelectMany((x, k) => new[] { ($"dense.{k}.m", x.M), ($"dense.{k}.v", x.V) }));

    /// <summary>Each parameter's step count (bias corrections), for a checkpoint.</summary>
    public List<long> Steps => _parts.Select(x => x.Optimizer.Steps).Concat(_plain.Select(x => x.Steps)).ToList();

    /// <summary>Puts back a checkpoint's state; get throws when a tensor is missing.</summary>
    public void Restore(Func<string, Tensor> get, IReadOnlyList<long>? steps, byte[] torchState, string path)
    {
        int count = _parts.Count + _plain.Count;
        if (steps is null || steps.Count != count)
            throw new Data.DataFormatException(path, 0, torchState.Length > 0
                ? "the checkpoint holds the dense optimizer state of an earlier build (TorchSharp's Adam), which this build does not continue: start the run again, or resume it with the build that started it"
                : "the checkpoint's dense optimizer state does not match this run's parameters");
        for (int k = 0; k < _parts.Count; k++)
            _parts[k].Optimizer.Restore(get($"dense.{k}.m"), get($"dense.{k}.v"), steps[k]);
        using var _ = torch.no_grad();
        for (int k = 0; k < _plain.Count; k++)
        {
            _plain[k].M.copy_(get($"dense.{k}.m"));
            _plain[k].V.copy_(get($"dense.{k}.v"));
            _plain[k].Steps = steps[k];
        }
    }

    /// <summary>Frees the moments and views of every parameter.</summary>
    public void Dispose()
    {
        foreach (var (_, rows, optimizer) in _parts) { optimizer.Dispose(); rows.Dispose(); }
        foreach (var s in _plain) { s.M.Dispose(); s.V.Dispose(); }
    }
}
