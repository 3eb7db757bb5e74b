using RecDistill.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Distillation;

/// <summary>CPD's preference-consistency regulariser R on the projector.</summary>
public enum PreferenceRegularizer
{
    /// <summary>No regulariser: the feature loss alone (DE).</summary>
    None,
    /// <summary>-log sigmoid of the projected times the raw score difference, on the batch's (user, positive, first negative) triples.</summary>
    Pairwise,
    /// <summary>Cross entropy from softmax(raw scores / tau) to softmax(projected scores / tau) over each user's Q list items.</summary>
    Listwise,
    /// <summary>Pairwise plus listwise.</summary>
    Hybrid,
}

/// <summary>CPD settings (SPEC 4.1 and 6).</summary>
public sealed record CpdOptions
{
    /// <summary>Number of experts E of the projector (30).</summary>
    public int Experts { get; init; } = 30;
    /// <summary>Dropout before each of the experts' linear layers (0).</summary>
    public double Dropout { get; init; } = 0.0;
    /// <summary>Which regulariser R keeps the projection's preferences consistent (listwise).</summary>
    public PreferenceRegularizer Regularizer { get; init; } = PreferenceRegularizer.Listwise;
    /// <summary>Weight alpha_C of the regulariser: L_CPD = L_feat + alpha_C R (0.1).</summary>
    public double AlphaC { get; init; } = 0.1;
    /// <summary>List items Q drawn per user each epoch for the listwise regulariser (5).</summary>
    public int Q { get; init; } = 5;
    /// <summary>Softmax temperature tau of the listwise regulariser (0.1).</summary>
    public double Tau { get; init; } = 0.1;
    /// <summary>Length of the teacher's top list the Q items are drawn from (100).</summary>
    public int TopN { get; init; } = 100;
    /// <summary>Temperature T of the draw's weights exp(-rank / T) (10).</summary>
    public double T { get; init; } = 10;
    /// <summary>Weight lambda_C of the CPD loss (0.05).</summary>
    public double Lambda { get; init; } = 0.05;
    /// <summary>Gumbel-softmax temperature of the expert selection: start * decay^(epoch-1), never below the floor.</summary>
    public double SelectionTemperature { get; init; } = 1.0;
    /// <summary>Factor applied to the selection temperature per epoch (0.98).</summary>
    public double SelectionTemperatureDecay { get; init; } = 0.98;
    /// <summary>Lowest selection temperature (0.05).</summary>
    public double SelectionTemperatureFloor { get; init; } = 0.05;
}

/// <summary>
/// CPD, intermediate layer: feature distillation through a DE-style projector (experts chosen per entity
/// by a Gumbel-softmax on the teacher vector), plus regularisers that keep the preference order of the
/// projected student vectors consistent with that of the raw student vectors. The regularisers see
/// student vectors detached, so they move the projector only.
/// </summary>
public sealed class ConsistentPreferenceDistillation : IDistillationMethod
{
    private readonly DistillationContext _ctx;
    private readonly CpdOptions _o;
    private Tensor? _listItems;  // [U, Q], re-sampled each epoch
    private Tensor? _users, _items;
    private long _pairs, _inconsistent;

    /// <summary>
    /// CPD (or DE, named "de" with no regulariser) on the context's teacher; throws
    /// <see cref="ArgumentException"/> when experts, Q or top-N is below 1.
    /// </summary>
    public ConsistentPreferenceDistillation(DistillationContext ctx, CpdOptions options, string name = "cpd")
    {
        if (options.Experts < 1 || options.Q < 1 || options.TopN < 1) throw new ArgumentException("CPD needs experts, Q and top-N of at least 1");
        _ctx = ctx; _o = options; Name = name;
        int dS = ctx.StudentDim, dT = ctx.Teacher.Dim;
        Projector = new ExpertProjector(name, dS, dT, options.Experts, Math.Max(1, (dS + dT) / 2), options.Dropout,
            ExpertCombination.TeacherGumbelSelection);
        Projector.to(ctx.Device);
        Projector.train();
    }

    /// <summary>The projector P: experts d_S -> (d_S + d_T) / 2 -> d_T, one per entity selected on the teacher vector.</summary>
    public ExpertProjector Projector { get; }
    /// <inheritdoc/>
    public string Name { get; }
    /// <summary>The projector's parameters (experts and selection net).</summary>
    public IEnumerable<TorchSharp.Modules.Parameter> Parameters => Projector.parameters();

    /// <summary>This epoch's Q list items per user [U, Q] (listwise and hybrid; null otherwise).</summary>
    internal Tensor? ListItems => _listItems;

    /// <summary>Share of sampled (u, i, j) pairs whose order under the projector differs from the raw student order, last epoch.</summary>
    public double InconsistencyRate => _pairs == 0 ? double.NaN : (double)_inconsistent / _pairs;

    /// <summary>NAME_inconsistency: the <see cref="InconsistencyRate"/> over the epoch's batches.</summary>
    public IReadOnlyDictionary<string, double> EpochDiagnostics =>
        new Dictionary<string, double> { [$"{Name}_inconsistency"] = InconsistencyRate };

    /// <summary>Anneals the selection temperature and, for the listwise and hybrid regularisers, draws each user's Q list items.</summary>
    public void OnEpochStart(int epoch, IRecommender student, Random rng)
    {
        _pairs = 0; _inconsistent = 0;
        Projector.AnnealTemperature(epoch, _o.SelectionTemperature, _o.SelectionTemperatureDecay, _o.SelectionTemperatureFloor);
        if (_o.Regularizer is PreferenceRegularizer.Listwise or PreferenceRegularizer.Hybrid)
        {
            _listItems?.Dispose();
            using var scope = torch.NewDisposeScope();
            var top = _ctx.TeacherTopK(_o.TopN);
            var logw = RankSampling.ExponentialRankLogWeights((int)top.shape[1], _o.T, _ctx.Device).expand(top.shape[0], -1);
            var pos = RankSampling.WithoutReplacement(logw, _o.Q);
            _listItems = top.gather(1, pos).MoveToOuterDisposeScope();
        }
    }

    /// <summary>The list items of the batch's distinct users (listwise, hybrid); no extra users.</summary>
    public (Tensor? Users, Tensor? Items) ExtraIds(TrainingBatch batch)
    {
        _users = batch.DistinctUsers;
        _items = batch.DistinctItems;
        return (null, _listItems is null ? null : _listItems.index_select(0, _users));
    }

    /// <summary>(feature loss + alpha_C x regulariser) x lambda_C.</summary>
    public Tensor Loss(TrainingBatch batch, EmbeddingLookup student)
    {
        var (feature, reg) = LossParts(batch, student);
        var loss = reg is null ? feature : feature.Plus(reg * FixedScalars.Of(_o.AlphaC));
        return loss * FixedScalars.Of(_o.Lambda);
    }

    /// <summary>
    /// The feature loss and the regulariser as two terms: each projects its own rows (the regulariser's
    /// are detached copies), so two cores can share them.
    /// </summary>
    public IReadOnlyList<LossTerm> Terms(TrainingBatch batch)
    {
        if (_o.Regularizer == PreferenceRegularizer.None) return [new LossTerm(Name, student => FeatureLoss(batch, student) * FixedScalars.Of(_o.Lambda))];
        return
        [
            new LossTerm($"{Name} features", student => FeatureLoss(batch, student) * FixedScalars.Of(_o.Lambda)),
            new LossTerm($"{Name} regulariser", student => RegularizerLoss(batch, student) * FixedScalars.Of(_o.Lambda * _o.AlphaC)),
        ];
    }

    /// <summary>The unweighted feature loss and regulariser (null when none) for one batch, in that order.</summary>
    public (Tensor Feature, Tensor? Regularizer) LossParts(TrainingBatch batch, EmbeddingLookup student)
    {
        var feature = FeatureLoss(batch, student);
        return (feature, _o.Regularizer == PreferenceRegularizer.None ? null : RegularizerLoss(batch, student));
    }

    /// <summary>
    /// sum ||t - P(s)||^2 over the batch's distinct users and (weight 0.5) items, one projector pass;
    /// counts the batch's pairs whose order the projection flips (the inconsistency rate).
    /// </summary>
    private Tensor FeatureLoss(TrainingBatch batch, EmbeddingLookup student)
    {
        var t = _ctx.Teacher;
        var (users, items) = (_users!, _items!);
        var tu = t.Users.index_select(0, users);
        var ti = t.Items.index_select(0, items);
        var su = student.Users(users);
        var si = student.Items(items);
        var projected = Projector.forward(torch.cat(new[] { su, si }), torch.cat(new[] { tu, ti }));
        var projU = projected.narrow(0, 0, su.shape[0]);
        var projI = projected.narrow(0, su.shape[0], si.shape[0]);
        var (suD, siD) = (su.detach(), si.detach());
        using (torch.no_grad())
        {
            var raw = PairDifferences(batch, suD, siD);
            var diag = PairDifferences(batch, projU.detach(), projI.detach());
            Count(raw.shape[0], (raw.sign() * diag.sign()).lt(FixedScalars.Zero).sum().item<long>());
        }
        return (tu - projU).Squared().sum().Plus((ti - projI).Squared().sum() * FixedScalars.Of(0.5));
    }

    // The feature term runs on one lane at a time; the lock keeps the count exact if that ever changes.
    private void Count(long pairs, long inconsistent)
    {
        lock (_countLock) { _pairs += pairs; _inconsistent += inconsistent; }
    }

    private readonly object _countLock = new();

    /// <summary>
    /// &lt;u, i&gt; - &lt;u, j&gt; for the batch's pairs (user, positive, first negative), from the rows of
    /// the batch's distinct users and items.
    /// </summary>
    private Tensor PairDifferences(TrainingBatch batch, Tensor userRows, Tensor itemRows)
    {
        var ru = torch.searchsorted(_users!, batch.Users);
        var rp = torch.searchsorted(_items!, batch.Positives);
        var rn = torch.searchsorted(_items!, batch.Negatives.select(1, 0));
        var u = userRows.index_select(0, ru);
        return TensorOps.RowDot(u, itemRows.index_select(0, rp)) - TensorOps.RowDot(u, itemRows.index_select(0, rn));
    }

    /// <summary>
    /// The regulariser on the projector alone (the student vectors detached), one projector pass over
    /// the batch's users, (pairwise) its items and (listwise) its users' list items.
    /// </summary>
    private Tensor RegularizerLoss(TrainingBatch batch, EmbeddingLookup student)
    {
        var t = _ctx.Teacher;
        var (users, items) = (_users!, _items!);
        bool pairwise = _o.Regularizer is PreferenceRegularizer.Pairwise or PreferenceRegularizer.Hybrid;
        bool listwise = _o.Regularizer is PreferenceRegularizer.Listwise or PreferenceRegularizer.Hybrid;
        var tu = t.Users.index_select(0, users);
        var suD = student.Users(users).detach();
        var inputs = new List<Tensor> { suD };
        var teachers = new List<Tensor> { tu };
        Tensor? siD = null, listItems = null, uniq = null, sq = null;
        if (pairwise)
        {
            siD = student.Items(items).detach();
            inputs.Add(siD); teachers.Add(t.Items.index_select(0, items));
        }
        if (listwise)
        {
            listItems = _listItems!.index_select(0, users);                        // [n, Q]
            uniq = TensorOps.Unique(listItems);
            sq = student.Items(uniq).detach();
            inputs.Add(sq); teachers.Add(t.Items.index_select(0, uniq));
        }
        var projected = Projector.forward(torch.cat(inputs), torch.cat(teachers));
        var pU = projected.narrow(0, 0, suD.shape[0]);

        Tensor? reg = null;
        if (pairwise)
        {
            var pI = projected.narrow(0, suD.shape[0], siD!.shape[0]);
            var rawDiff = PairDifferences(batch, suD, siD);
            reg = -nn.functional.logsigmoid(PairDifferences(batch, pU, pI) * rawDiff).sum();
        }
        if (listwise)
        {
            // Scores of each user's Q list items: rows of the unique list items, read in place by ListScores.
            var pq = projected.narrow(0, projected.shape[0] - sq!.shape[0], sq.shape[0]);
            var rows = torch.searchsorted(uniq!, listItems!);                                      // [n, Q]
            var self = FixedScalars.Arange(listItems!.shape[0], ScalarType.Int64, listItems.device);
            var raw = ListScores.Compute(suD, sq, self, rows);
            var proj = ListScores.Compute(pU, pq, self, rows);
            var list = SoftLabelDistillation.SoftCrossEntropy(raw, proj, null, _o.Tau).sum();
            reg = reg is null ? list : reg.Plus(list);
        }
        return reg!;
    }

    /// <summary>Frees the list items and the projector.</summary>
    public void Dispose()
    {
        _listItems?.Dispose();
        Projector.Dispose();
    }
}
