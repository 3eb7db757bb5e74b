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
/// </summary>
public sealed class ExpertProjector : nn.Module<Tensor, Tensor?, Tensor>
{
    private readonly ModuleList<Sequential> _experts = new();
    private readonly Linear? _selector;
    private readonly ExpertCombination _combination;

    public ExpertProjector(string name, int studentDim, int teacherDim, int experts, int hidden, double dropout,
        ExpertCombination combination) : base(name)
    {
        if (experts < 1) throw new ArgumentOutOfRangeException(nameof(experts), "at least one expert");
        _combination = combination;
        for (int e = 0; e < experts; e++)
            _experts.Add(nn.Sequential(
                ("drop1", nn.Dropout(dropout)), ("fc1", nn.Linear(studentDim, hidden)), ("relu", nn.ReLU()),
                ("drop2", nn.Dropout(dropout)), ("fc2", nn.Linear(hidden, teacherDim))));
        if (combination == ExpertCombination.TeacherGumbelSelection)
            _selector = nn.Linear(teacherDim, experts);
        RegisterComponents();
    }

    /// <summary>Gumbel-softmax temperature for the expert selection (annealed by the caller).</summary>
    public double Temperature { get; set; } = 1.0;

    public int Experts => _experts.Count;

    /// <summary>student [n, d_S] (and, for the selection form, teacher [n, d_T]) -> [n, d_T].</summary>
    public override Tensor forward(Tensor student, Tensor? teacher)
    {
        if (_combination == ExpertCombination.MeanNormalized)
        {
            var outs = torch.stack(_experts.Select(e => e.forward(student)).ToArray(), dim: 1); // [n, E, d_T]
            return nn.functional.normalize(outs.mean(new long[] { 1 }), p: 2, dim: -1);
        }
        if (teacher is null) throw new ArgumentException("the selection form needs the teacher vectors");
        var logits = _selector!.forward(teacher);
        var probs = training ? GumbelSoftmax(logits, Temperature) : logits.softmax(-1);
        var selected = probs.argmax(-1);
        // Each entity goes through its one selected expert only (computing all E experts for every row
        // costs E times more). The output is scaled by p_sel / stopgrad(p_sel): value unchanged, and the
        // selection net still gets a gradient through the chosen expert's probability.
        var gate = probs.gather(1, selected.unsqueeze(1));
        return RunSelected(student, selected) * (gate / gate.detach());
    }

    private Tensor RunSelected(Tensor student, Tensor selected)
    {
        var (_, perm) = selected.sort();
        var counts = torch.bincount(selected, minlength: _experts.Count).cpu().data<long>().ToArray();
        var parts = new List<Tensor>();
        long offset = 0;
        for (int e = 0; e < counts.Length; e++)
        {
            if (counts[e] == 0) continue;
            var rows = perm.narrow(0, offset, counts[e]);
            parts.Add(_experts[e].forward(student.index_select(0, rows)));
            offset += counts[e];
        }
        // parts are in perm order; argsort(perm) puts each row back in place.
        return torch.cat(parts, 0).index_select(0, perm.argsort());
    }

    public static Tensor GumbelSoftmax(Tensor logits, double tau)
    {
        var u = torch.rand_like(logits).clamp_(1e-10, 1 - 1e-10);
        var g = -(-u.log()).log();
        return ((logits + g) / tau).softmax(-1);
    }

    /// <summary>Projected vectors of the given student rows, gradient flowing to the projector only.</summary>
    public Tensor ProjectDetached(Tensor student, Tensor? teacher) => forward(student.detach(), teacher);
}
