using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RecDistill.Distillation;

/// <summary>How the experts' outputs are combined.</summary>
public enum ExpertCombination
{
    /// <summary>Average of all experts, then L2-normalised (NKD's projector).</summary>
    MeanNormalized,
    /// <summary>One expert per entity chosen by a selection net on the teacher vector, with a Gumbel-softmax (DE, CPD).</summary>
    TeacherGumbelSelection,
}

/// <summary>
/// E small MLP experts mapping student vectors (d_S) to the teacher's space (d_T):
/// dropout -> linear(d_S, hidden) -> ReLU -> dropout -> linear(hidden, d_T).
/// The experts' weights are stacked in one tensor per layer so that all experts run as one
/// pass of slices of the same tensors, without E separate modules and their per-call overhead.
/// </summary>
public sealed class ExpertProjector : nn.Module<Tensor, Tensor?, Tensor>
{
    private readonly Parameter _w1, _b1, _w2, _b2; // [E, d_S, H], [E, 1, H], [E, H, d_T], [E, 1, d_T]
    private readonly Linear? _selector;
    private readonly ExpertCombination _combination;
    private readonly double _dropout;

    /// <summary>
    /// <paramref name="experts"/> MLPs studentDim -> hidden -> teacherDim, initialised as nn.Linear, with
    /// <paramref name="dropout"/> before each linear layer, and for the selection form a linear selection
    /// net teacherDim -> experts. Throws <see cref="ArgumentOutOfRangeException"/> for no expert or
    /// dropout outside [0, 1).
    /// </summary>
    public ExpertProjector(string name, int studentDim, int teacherDim, int experts, int hidden, double dropout,
        ExpertCombination combination) : base(name)
    {
        if (experts < 1) throw new ArgumentOutOfRangeException(nameof(experts), "at least one expert");
        if (dropout is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(dropout), "dropout must lie in [0, 1)");
        _combination = combination;
        _dropout = dropout;
        // The initialisation of nn.Linear: uniform in +-1/sqrt(fan_in) for weights and biases.
        static Parameter Uniform(long[] shape, int fanIn)
        {
            double bound = 1.0 / Math.Sqrt(fanIn);
            return new Parameter(torch.empty(shape).uniform_(-bound, bound));
        }
        _w1 = Uniform(new long[] { experts, studentDim, hidden }, studentDim);
        _b1 = Uniform(new long[] { experts, 1, hidden }, studentDim);
        _w2 = Uniform(new long[] { experts, hidden, teacherDim }, hidden);
        _b2 = Uniform(new long[] { experts, 1, teacherDim }, hidden);
        if (combination == ExpertCombination.TeacherGumbelSelection)
            _selector = nn.Linear(teacherDim, experts);
        RegisterComponents();
    }

    /// <summary>Gumbel-softmax temperature for the expert selection (annealed by the caller).</summary>
    public double Temperature { get; set; } = 1.0;

    /// <summary>The annealing schedule of DE, CPD and HTD: start * decay^(epoch - 1), never below the floor.</summary>
    public void AnnealTemperature(int epoch, double start, double decay, double floor) =>
        Temperature = Math.Max(floor, start * Math.Pow(decay, epoch - 1));

    /// <summary>Number of experts E.</summary>
    public int Experts => (int)_w1.shape[0];

    // The parameters as the loss term on this thread sees them (its own leaf copies inside the trainer's lanes).
    private Tensor W1 => ParameterAliases.Resolve(_w1);
    private Tensor B1 => ParameterAliases.Resolve(_b1);
    private Tensor W2 => ParameterAliases.Resolve(_w2);
    private Tensor B2 => ParameterAliases.Resolve(_b2);

    private static Tensor Affine(Tensor x, Tensor w, Tensor b) => torch.addmm(b, x, w, 1, 1);

    /// <summary>student [n, d_S] (and, for the selection form, teacher [n, d_T]) -> [n, d_T].</summary>
    public override Tensor forward(Tensor student, Tensor? teacher)
    {
        if (_combination == ExpertCombination.MeanNormalized)
            return nn.functional.normalize(ForwardDirection(student), p: 2, dim: -1); // the mean's 1/E vanishes here
        return ForwardSelected(student, teacher ?? throw new ArgumentException("the selection form needs the teacher vectors")).Output;
    }

    /// <summary>
    /// The mean form before its L2 normalisation (the sum of the experts' outputs), for losses that see
    /// only the direction (a cosine): the normalisation's forward and backward over [rows, d_T] are saved.
    /// </summary>
    public Tensor ForwardDirection(Tensor student)
    {
        if (_combination != ExpertCombination.MeanNormalized) throw new InvalidOperationException("only the mean form is normalised");
        // The sum of E experts equals one wide MLP: the experts' hidden layers side by side
        // ([n, E*H]) times their stacked output weights ([E*H, d_T]). The large second layer thus
        // runs as one GEMM instead of E small ones; the first layer stays per expert so that each
        // expert keeps its own input dropout mask, and dropout on the concatenated hidden layer
        // is the same as independent per-expert masks.
        var hidden = new Tensor[Experts];
        for (int e = 0; e < Experts; e++)
            hidden[e] = Affine(Drop(student), W1[e], B1[e]).relu_();
        var h = Drop(Experts == 1 ? hidden[0] : torch.cat(hidden, 1));
        return Affine(h, W2.reshape(-1, _w2.shape[2]), B2.sum(new long[] { 0 }));
    }

    /// <summary>Selection form: the projected vectors [n, d_T] and each row's chosen expert [n].</summary>
    public (Tensor Output, Tensor Selected) ForwardSelected(Tensor student, Tensor teacher)
    {
        if (_selector is null) throw new InvalidOperationException("the mean form has no expert selection");
        var logits = Affine(teacher, ParameterAliases.Resolve(_selector.weight!).t(), ParameterAliases.Resolve(_selector.bias!));
        var probs = training ? GumbelSoftmax(logits, Temperature) : logits.softmax(-1);
        var selected = probs.argmax(-1);
        // Each entity goes through its one selected expert only (computing all E experts for every row
        // costs E times more). The output is scaled by p_sel / stopgrad(p_sel): value unchanged, and the
        // selection net still gets a gradient through the chosen expert's probability.
        var gate = probs.gather(1, selected.unsqueeze(1));
        return (RunSelected(student, selected) * (gate / gate.detach()), selected);
    }

    private Tensor Drop(Tensor x) => _dropout > 0 && training ? CounterRandom.Dropout(x, _dropout) : x;

    /// <summary>
    /// The libtorch path of the selection form: true runs every row through every expert (two batched
    /// products) and keeps each row's selected expert's output; false runs each expert on its own rows.
    /// Default (null): true off the CPU, where the grouped form's dozen calls per expert, forward and
    /// backward, cost more than E times the arithmetic (30 experts: some 1,500 GPU calls per batch for
    /// DE's users and items); false on the CPU. Tests set it to compare the two forms.
    /// </summary>
    public bool? EveryExpertOnEveryRow { get; set; }

    private Tensor RunSelected(Tensor student, Tensor selected)
    {
        if (EveryExpertOnEveryRow ?? student.device_type != DeviceType.CPU) return RunEveryExpert(student, selected);
        var (perm, counts) = TensorOps.GroupByLabel(selected, Experts);
        var parts = new List<Tensor>();
        long offset = 0;
        for (int e = 0; e < counts.Length; e++)
        {
            if (counts[e] == 0) continue;
            var rows = Drop(student.index_select(0, perm.narrow(0, offset, counts[e])));
            var h = Drop(Affine(rows, W1[e], B1[e]).relu_());
            parts.Add(Affine(h, W2[e], B2[e]));
            offset += counts[e];
        }
        // parts are in perm order; argsort(perm) puts each row back in place.
        return torch.cat(parts, 0).index_select(0, perm.argsort());
    }

    /// <summary>
    /// Largest [E, rows, width] block of <see cref="RunEveryExpert"/> (elements; 2^26 floats, 256 MB):
    /// more rows than fit run in chunks, so that a large batch or teacher does not exhaust a GPU's memory.
    /// </summary>
    internal long EveryExpertMaxElements { get; set; } = 1L << 26;

    /// <summary>
    /// Every expert on every row ([E, n, ...] batched products), then row r's output from expert
    /// selected[r]. Each expert copy of a row draws its own dropout mask, as the grouped form's does.
    /// </summary>
    private Tensor RunEveryExpert(Tensor student, Tensor selected)
    {
        long n = student.shape[0], width = Math.Max(_w1.shape[2], _w2.shape[2]);
        long chunk = Math.Max(1, EveryExpertMaxElements / (Experts * width));
        if (n > chunk)
        {
            var parts = new List<Tensor>();
            for (long from = 0; from < n; from += chunk)
            {
                long rows = Math.Min(chunk, n - from);
                parts.Add(RunEveryExpert(student.narrow(0, from, rows), selected.narrow(0, from, rows)));
            }
            return torch.cat(parts, 0);
        }
        var x = Drop(student.unsqueeze(0).expand(Experts, n, student.shape[1]));
        var h = Drop(torch.bmm(x, W1).PlusInPlace(B1).relu_());
        var y = torch.bmm(h, W2).PlusInPlace(B2);                                         // [E, n, d_T]
        return y.gather(0, selected.view(1, n, 1).expand(1, n, y.shape[2])).squeeze(0);
    }

    /// <summary>Expert e's output for the given rows, no dropout (for tests and diagnostics).</summary>
    public Tensor ExpertOutput(int e, Tensor student) =>
        torch.addmm(_b2[e], torch.addmm(_b1[e], student, _w1[e], 1, 1).relu(), _w2[e], 1, 1);

    /// <summary>softmax((logits + g) / tau) with Gumbel noise g = -log(-log u), u uniform from the loss term's generator.</summary>
    public static Tensor GumbelSoftmax(Tensor logits, double tau)
    {
        var g = -(-GumbelUniform(logits).log()).log();
        return (logits.Plus(g) / FixedScalars.Of(tau)).softmax(-1);
    }

    /// <summary>Uniform noise in (0, 1) of the logits' shape for the Gumbel draw g = -log(-log u), from the loss term's generator.</summary>
    private static Tensor GumbelUniform(Tensor logits) =>
        (LossGenerator.For(logits.device) is { } gen
            ? torch.rand(logits.shape, logits.dtype, logits.device, generator: gen)
            : torch.rand_like(logits))
        .clamp_(FixedScalars.Of(1e-10), FixedScalars.Of(1 - 1e-10));

    /// <summary>Projected vectors of the given student rows, gradient flowing to the projector only.</summary>
    public Tensor ProjectDetached(Tensor student, Tensor? teacher) => forward(student.detach(), teacher);
}
