using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RecDistill.Training;

/// <summary>
/// Adam over whole parameters (LightGCN's tables, the distillation methods' projectors and experts),
/// with L2 weight decay added to the gradient as torch's Adam does. Each parameter is stepped by
/// <see cref="RowSparseAdam"/>'s fused in-place pass over all of its rows. TorchSharp's Adam runs about
/// ten tensor operations per parameter and step, each with implicit Scalars that the finalizer may
/// free while libtorch still reads them (see FixedScalars); it stays available as the benchmarks'
/// baseline (<see cref="TrainOptions.TorchAdam"/>).
/// </summary>
public sealed class DenseAdam : IDisposable
{
    private readonly List<(Parameter Parameter, Tensor Rows, RowSparseAdam Optimizer)> _parts = new();
    private readonly Adam? _torch;

    public DenseAdam(IReadOnlyList<Parameter> parameters, double lr, double weightDecay, bool torchAdam = false)
    {
        if (torchAdam)
        {
            _torch = optim.Adam(parameters, lr: lr, weight_decay: weightDecay);
            return;
        }
        foreach (var p in parameters)
        {
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
        if (_torch is not null) { _torch.zero_grad(); return; }
        foreach (var (p, _, _) in _parts) p.grad = null;
    }

    /// <summary>One step for every parameter that has had a gradient (the others keep their step count, as in torch).</summary>
    public void Step()
    {
        if (_torch is not null) { _torch.step(); return; }
        using var _ = torch.no_grad();
        foreach (var (p, rows, optimizer) in _parts)
        {
            using var grad = p.grad;
            if (grad is null && optimizer.Steps == 0) continue;
            using var gradRows = grad is null ? torch.zeros(rows.shape, device: rows.device) : grad.reshape(rows.shape);
            optimizer.StepAll(gradRows);
        }
    }

    /// <summary>The moments, by name, for a checkpoint (none with TorchSharp's Adam: see <see cref="WriteTorchState"/>).</summary>
    public IEnumerable<(string Name, Tensor Value)> StateTensors =>
        _parts.SelectMany((x, k) => new[] { ($"dense.{k}.m", x.Optimizer.FirstMoment), ($"dense.{k}.v", x.Optimizer.SecondMoment) });

    /// <summary>Each parameter's step count (bias corrections), for a checkpoint.</summary>
    public List<long> Steps => _parts.Select(x => x.Optimizer.Steps).ToList();

    /// <summary>TorchSharp's Adam state (benchmark baseline only), else null.</summary>
    public Action<BinaryWriter>? WriteTorchState => _torch is null ? null : w => _torch.save_state_dict(w);

    /// <summary>Puts back a checkpoint's state; get throws when a tensor is missing.</summary>
    public void Restore(Func<string, Tensor> get, IReadOnlyList<long>? steps, byte[] torchState, string path)
    {
        if (_torch is not null)
        {
            using var r = new BinaryReader(new MemoryStream(torchState));
            _torch.load_state_dict(r);
            return;
        }
        if (steps is null || steps.Count != _parts.Count)
            throw new Data.DataFormatException(path, 0, torchState.Length > 0
                ? "the checkpoint holds the dense optimizer state of an earlier build (TorchSharp's Adam), which this build does not continue: start the run again, or resume it with the build that started it"
                : "the checkpoint's dense optimizer state does not match this run's parameters");
        for (int k = 0; k < _parts.Count; k++)
            _parts[k].Optimizer.Restore(get($"dense.{k}.m"), get($"dense.{k}.v"), steps[k]);
    }

    public void Dispose()
    {
        _torch?.Dispose();
        foreach (var (_, rows, optimizer) in _parts) { optimizer.Dispose(); rows.Dispose(); }
    }
}
