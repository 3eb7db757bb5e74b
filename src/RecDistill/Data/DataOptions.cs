namespace RecDistill.Data;

/// <summary>How to read, clean and split a dataset; see <see cref="DatasetLoader.Load"/>.</summary>
public sealed record DataOptions
{
    /// <summary>File (or, for <see cref="DataFormat.Split"/>, directory); ignored for <see cref="DataFormat.Synthetic"/>.</summary>
    public string? Path { get; init; }

    /// <summary>These options with <see cref="Path"/> made absolute: how two runs' data are compared (a CLI resume replays absolute paths).</summary>
    internal DataOptions WithFullPath() => this with { Path = Path is null ? null : System.IO.Path.GetFullPath(Path) };
    /// <summary>The input format, which decides the reader.</summary>
    public required DataFormat Format { get; init; }
    /// <summary>Csv only: field delimiter (a literal, or "tab"/"space"/"whitespace"); null detects it.</summary>
    public string? Delimiter { get; init; }
    /// <summary>Csv only: true/false forces whether the first line is a header; null detects it.</summary>
    public bool? Header { get; init; }
    /// <summary>Csv only: the user, item, [rating], [timestamp] columns by header name or 1-based position (<see cref="ColumnChoice"/>); null takes the first 2 to 4 fields.</summary>
    public IReadOnlyList<string>? Columns { get; init; }
    /// <summary>Keep rows with rating &gt;= this; rows without a rating are always kept. Null keeps all.</summary>
    public float? PositiveThreshold { get; init; }
    /// <summary>k-core bar for users; null means the format's default (<see cref="DatasetLoader.DefaultMinUserInteractions"/>).</summary>
    public int? MinUserInteractions { get; init; }
    /// <summary>k-core bar for items (0, the default, keeps every item).</summary>
    public int MinItemInteractions { get; init; }
    /// <summary>Ignored for <see cref="DataFormat.Split"/>, whose files are the split.</summary>
    public SplitMethod Split { get; init; } = SplitMethod.Order;
    /// <summary>Share of each user's interactions that goes to train; the train cut is floor(TrainRatio n), at least one.</summary>
    public double TrainRatio { get; init; } = 0.8;
    /// <summary>The validation cut is floor((TrainRatio + ValidRatio) n).</summary>
    public double ValidRatio { get; init; } = 0.1;
    /// <summary>Seed of the Random split; 0 by default, while the CLI's --seed (default 2023) sets it.</summary>
    public int Seed { get; init; }
    /// <summary>Used when <see cref="Format"/> is <see cref="DataFormat.Synthetic"/>.</summary>
    public SyntheticOptions Synthetic { get; init; } = new();

    /// <summary>The user k-core bar applied: <see cref="MinUserInteractions"/>, or the format's default.</summary>
    public int EffectiveMinUserInteractions => MinUserInteractions ?? DatasetLoader.DefaultMinUserInteractions(Format);

    /// <summary>Throws <see cref="ArgumentException"/> for settings that cannot work, before any file is read.</summary>
    public void Validate()
    {
        if (!Enum.IsDefined(Format))
            throw new ArgumentOutOfRangeException(nameof(Format), Format, "unknown data format");
        if (!Enum.IsDefined(Split))
            throw new ArgumentOutOfRangeException(nameof(Split), Split, "unknown split method");
        if (Format != DataFormat.Synthetic && string.IsNullOrWhiteSpace(Path))
            throw new ArgumentException($"a path is required for format {Format.ToString().ToLowerInvariant()}", nameof(Path));
        if (MinUserInteractions < 0)
            throw new ArgumentOutOfRangeException(nameof(MinUserInteractions), MinUserInteractions, "must be >= 0");
        if (MinItemInteractions < 0)
            throw new ArgumentOutOfRangeException(nameof(MinItemInteractions), MinItemInteractions, "must be >= 0");
        if (PositiveThreshold is { } t && !float.IsFinite(t))
            throw new ArgumentOutOfRangeException(nameof(PositiveThreshold), t, "must be a finite number");
        if (Delimiter is "")
            throw new ArgumentException("delimiter must not be empty (leave it unset to detect it)", nameof(Delimiter));
        if (Columns is not null)
        {
            if (Format != DataFormat.Csv)
                throw new ArgumentException("columns apply to the csv format only", nameof(Columns));
            if (ColumnChoice.Parse(Columns).NeedsHeader && Header == false)
                throw new ArgumentException("columns by name need a header row; give positions (1, 2, ...) for a file without one", nameof(Columns));
        }
        DataSplitter.CheckRatios(TrainRatio, ValidRatio, nameof(TrainRatio), nameof(ValidRatio));
        if (Format == DataFormat.Synthetic)
            Synthetic.Validate();
    }
}
