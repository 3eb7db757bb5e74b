using RecDistill.Models;

namespace RecDistill.Distillation;

/// <summary>Method name plus every method's settings; MKD's three parts can be switched off for the ablation.</summary>
public sealed record DistillationOptions
{
    /// <summary>The method, one of <see cref="DistillationMethods.AllNames"/> (any case); "mkd" by default.</summary>
    public string Method { get; init; } = "mkd";
    /// <summary>NKD's settings, also for NKD as a part of MKD and the ablation.</summary>
    public NkdOptions Nkd { get; init; } = new();
    /// <summary>CPD's settings, also for CPD as a part of MKD and the ablation.</summary>
    public CpdOptions Cpd { get; init; } = new();
    /// <summary>SLD's settings, also for SLD as a part of MKD and the ablation.</summary>
    public SldOptions Sld { get; init; } = new();
    /// <summary>KD's settings.</summary>
    public KdOptions Kd { get; init; } = new();
    /// <summary>RD's settings.</summary>
    public RdOptions Rd { get; init; } = new();
    /// <summary>CD's settings.</summary>
    public CdOptions Cd { get; init; } = new();
    /// <summary>DE's settings.</summary>
    public DeOptions De { get; init; } = new();
    /// <summary>RRD's settings.</summary>
    public RrdOptions Rrd { get; init; } = new();
    /// <summary>HTD's settings.</summary>
    public HtdOptions Htd { get; init; } = new();
    /// <summary>Whether "mkd" includes NKD (false for the ablation without it).</summary>
    public bool UseNkd { get; init; } = true;
    /// <summary>Whether "mkd" includes CPD (false for the ablation without it).</summary>
    public bool UseCpd { get; init; } = true;
    /// <summary>Whether "mkd" includes SLD (false for the ablation without it).</summary>
    public bool UseSld { get; init; } = true;

    /// <summary>The defaults for a method on a backbone: SLD's settings follow the backbone (<see cref="SldOptions.For"/>).</summary>
    public static DistillationOptions Defaults(string method, Backbone backbone) =>
        new() { Method = method, Sld = SldOptions.For(backbone) };
}

/// <summary>Creates a method by name. "scratch" is the student without a teacher (no method).</summary>
public static class DistillationMethods
{
    /// <summary>The student without a teacher, the baselines of SPEC 4.2, then MKD's parts and MKD.</summary>
    public static readonly string[] Names = { "scratch", "kd", "rd", "cd", "de", "rrd", "htd", "nkd", "cpd", "sld", "mkd" };

    /// <summary>MKD with one of its three parts left out (the ablation); each uses MKD's settings for the parts it keeps.</summary>
    public static readonly string[] Ablations = { "nkd+cpd", "nkd+sld", "cpd+sld" };

    /// <summary>Every name <see cref="Create"/> accepts.</summary>
    public static IEnumerable<string> AllNames => Names.Concat(Ablations);

    /// <summary>Whether <see cref="Create"/> accepts the name (any case).</summary>
    public static bool IsKnown(string name) => Names.Contains(name.ToLowerInvariant()) || Ablations.Contains(name.ToLowerInvariant());

    /// <summary>MKD's parts a method name stands for ("mkd": all three, "nkd+sld": two), or null for any other method.</summary>
    public static string[]? MkdParts(string name) => name.ToLowerInvariant() switch
    {
        "mkd" => ["nkd", "cpd", "sld"],
        var n when Ablations.Contains(n) => n.Split('+'),
        _ => null,
    };

    /// <summary>
    /// Throws <see cref="ArgumentException"/> for what <see cref="Create"/> would refuse without needing a
    /// context: an unknown name, or "mkd" with all three parts switched off.
    /// </summary>
    internal static void Validate(DistillationOptions o)
    {
        if (!IsKnown(o.Method)) throw new ArgumentException($"unknown method '{o.Method}': use one of {string.Join(", ", AllNames)}");
        if (o.Method.Equals("mkd", StringComparison.OrdinalIgnoreCase) && !o.UseNkd && !o.UseCpd && !o.UseSld)
            throw new ArgumentException("mkd with NKD, CPD and SLD all switched off has no part left");
    }

    /// <summary>
    /// The method the options name (any case), on the context; null for "scratch". Throws
    /// <see cref="ArgumentException"/> for an unknown name, or "mkd" with all three parts switched off.
    /// </summary>
    public static IDistillationMethod? Create(DistillationOptions o, DistillationContext ctx) => o.Method.ToLowerInvariant() switch
    {
        "scratch" => null,
        "kd" => new KnowledgeDistillation(ctx, o.Kd),
        "rd" => new RankingDistillation(ctx, o.Rd),
        "cd" => new CollaborativeDistillation(ctx, o.Cd),
        "de" => DistillationExperts.Create(ctx, o.De),
        "rrd" => new RelaxedRankingDistillation(ctx, o.Rrd),
        "htd" => new HierarchicalTopologyDistillation(ctx, o.Htd),
        "nkd" => new NeighborDistillation(ctx, o.Nkd),
        "cpd" => new ConsistentPreferenceDistillation(ctx, o.Cpd),
        "sld" => new SoftLabelDistillation(ctx, o.Sld),
        "mkd" => new CompositeDistillation("mkd", new IDistillationMethod?[]
        {
            o.UseNkd ? new NeighborDistillation(ctx, o.Nkd) : null,
            o.UseCpd ? new ConsistentPreferenceDistillation(ctx, o.Cpd) : null,
            o.UseSld ? new SoftLabelDistillation(ctx, o.Sld) : null,
        }.OfType<IDistillationMethod>().ToList()),
        var n when Ablations.Contains(n) => new CompositeDistillation(n, n.Split('+').Select(part => part switch
        {
            "nkd" => (IDistillationMethod)new NeighborDistillation(ctx, o.Nkd),
            "cpd" => new ConsistentPreferenceDistillation(ctx, o.Cpd),
            _ => new SoftLabelDistillation(ctx, o.Sld),
        }).ToList()),
        _ => throw new ArgumentException($"unknown method '{o.Method}': use one of {string.Join(", ", Names.Concat(Ablations))}"),
    };
}
