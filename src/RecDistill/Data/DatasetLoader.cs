namespace RecDistill.Data;

/// <summary>The whole data pipeline: read, keep positives, de-duplicate, k-core, split, re-index.</summary>
public static class DatasetLoader
{
    /// <summary>k-core user bar when <see cref="DataOptions.MinUserInteractions"/> is null: 5 as in the paper, 0 for pre-split data (already filtered).</summary>
    public static int DefaultMinUserInteractions(DataFormat format) => format == DataFormat.Split ? 0 : 5;

    /// <summary>
    /// Loads a dataset as <paramref name="options"/> say and records each step in <see cref="SplitDataset.Log"/>.
    /// </summary>
    /// <exception cref="DataFormatException">The input is missing or malformed, or nothing is left after cleaning.</exception>
    /// <exception cref="ArgumentException">The options are inconsistent (e.g. ratios), checked before reading.</exception>
    public static SplitDataset Load(DataOptions options)
    {
        options.Validate();
        return options.Format == DataFormat.Split ? LoadPreSplit(options) : LoadSingle(options);
    }

    /// <summary>Reads the raw interactions of a single-file (or synthetic) format without cleaning.</summary>
    public static RawDataset ReadRaw(DataOptions options)
    {
        options.Validate();
        return options.Format switch
        {
            DataFormat.Synthetic => SyntheticDataGenerator.Generate(options.Synthetic),
            DataFormat.Citeulike => DatasetReaders.ReadCiteulike(options.Path!),
            DataFormat.Movielens => DatasetReaders.ReadMovielens(options.Path!),
            DataFormat.Csv => DatasetReaders.ReadDelimited(options.Path!, options.Delimiter, options.Header, options.Columns),
            DataFormat.Lightgcn => DatasetReaders.ReadLightgcn(options.Path!),
            _ => throw new ArgumentException("pre-split data has three parts; use DatasetReaders.ReadPreSplit", nameof(options)),
        };
    }

    private static SplitDataset LoadSingle(DataOptions o)
    {
        var raw = ReadRaw(o);
        var log = new List<string>();
        string fmt = o.Format.ToString().ToLowerInvariant();
        log.Add(Inv($"source: {raw.Source} ({fmt})"));
        log.Add(Inv($"read {raw.Interactions.Count:N0} interactions: {CountUsers(raw.Interactions):N0} users, {CountItems(raw.Interactions):N0} items"));
        LogSkipped(log, raw);

        var rows = Clean(raw.Interactions, o, log, raw.Source);

        if (o.Split == SplitMethod.Time)
        {
            foreach (var r in rows)
                if (r.Timestamp is null)
                    throw new DataFormatException(raw.Source, r.Line,
                        "split 'time' needs a timestamp on every interaction, and this line has none");
        }
        var data = DataSplitter.Split(NameOf(o), rows, o.Split, o.TrainRatio, o.ValidRatio, o.Seed, log);
        AddFinal(log, data);
        return data;
    }

    private static SplitDataset LoadPreSplit(DataOptions o)
    {
        var parts = DatasetReaders.ReadPreSplit(o.Path!);
        var log = new List<string> { Inv($"source: {o.Path} (split)") };
        if (o.Split != SplitMethod.Order)
            log.Add(Inv($"split method {o.Split} ignored: the files are the split"));
        var named = new List<(string Name, RawDataset Raw)> { ("train", parts.Train) };
        if (parts.Valid is not null) named.Add(("valid", parts.Valid));
        else log.Add("no validation file (valid.txt or val.txt): validation is empty");
        named.Add(("test", parts.Test));
        foreach (var (name, raw) in named)
        {
            log.Add(Inv($"read {name}: {raw.Interactions.Count:N0} interactions, {CountUsers(raw.Interactions):N0} users, {CountItems(raw.Interactions):N0} items ({raw.Source})"));
            LogSkipped(log, raw);
        }

        // Tag each row with its part so the union can be cleaned as one dataset, then split back.
        var all = new List<RawInteraction>();
        var partOf = new Dictionary<(string, string), int>();
        for (int p = 0; p < named.Count; p++)
        {
            var kept = DataCleaning.KeepPositive(named[p].Raw.Interactions, o.PositiveThreshold, out int below);
            if (below > 0) log.Add(Inv($"positive threshold {o.PositiveThreshold}: removed {below:N0} {named[p].Name} interactions"));
            int dupWithin = 0, dupAcross = 0;
            foreach (var r in kept)
            {
                if (partOf.TryGetValue((r.User, r.Item), out int q))
                {
                    if (q == p) dupWithin++; else dupAcross++;
                    continue;
                }
                partOf[(r.User, r.Item)] = p;
                all.Add(r);
            }
            if (dupWithin > 0) log.Add(Inv($"removed {dupWithin:N0} duplicate (user, item) pairs within {named[p].Name}, keeping the first"));
            if (dupAcross > 0) log.Add(Inv($"removed {dupAcross:N0} {named[p].Name} pairs already in an earlier part (train before valid before test)"));
        }

        int minUser = o.EffectiveMinUserInteractions;
        if (minUser > 0 || o.MinItemInteractions > 0)
        {
            var core = DataCleaning.KCore(all, minUser, o.MinItemInteractions);
            LogKCore(log, core, minUser, o.MinItemInteractions);
            all = core.Rows;
        }

        var split = new List<RawInteraction>[3] { new(), new(), new() };
        bool hasValid = parts.Valid is not null;
        foreach (var r in all)
        {
            int p = partOf[(r.User, r.Item)];
            split[hasValid || p == 0 ? p : 2].Add(r);
        }
        if (split[0].Count == 0)
            throw new DataFormatException(o.Path!, 0, "no train interactions left after cleaning");
        var data = DataSplitter.FromPreSplit(NameOf(o), split[0], split[1], split[2], log);
        AddFinal(log, data);
        return data;
    }

    private static List<RawInteraction> Clean(List<RawInteraction> input, DataOptions o, List<string> log, string source)
    {
        var rows = DataCleaning.KeepPositive(input, o.PositiveThreshold, out int below);
        if (o.PositiveThreshold is { } t)
            log.Add(Inv($"positive threshold {t}: removed {below:N0} interactions with a lower rating"));
        rows = DataCleaning.RemoveDuplicates(rows, out int dups);
        log.Add(Inv($"removed {dups:N0} duplicate (user, item) pairs, keeping the first"));
        int minUser = o.EffectiveMinUserInteractions;
        var core = DataCleaning.KCore(rows, minUser, o.MinItemInteractions);
        LogKCore(log, core, minUser, o.MinItemInteractions);
        if (core.Rows.Count == 0)
            throw new DataFormatException(source, 0,
                Inv($"no interactions left after cleaning (positive threshold {(o.PositiveThreshold?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none")}, users >= {minUser}, items >= {o.MinItemInteractions})"));
        return core.Rows;
    }

    private static void LogKCore(List<string> log, KCoreResult core, int minUser, int minItem) =>
        log.Add(Inv($"k-core (users >= {minUser}, items >= {minItem}): removed {core.RemovedUsers:N0} users, {core.RemovedItems:N0} items, {core.RemovedPairs:N0} interactions in {core.Rounds} round(s)"));

    private static string ReplaceFirst(string text, string what, string with)
    {
        int at = text.IndexOf(what, StringComparison.Ordinal);
        return at < 0 ? text : text[..at] + with + text[(at + what.Length)..];
    }

    private static void LogSkipped(List<string> log, RawDataset raw)
    {
        // The reasons are plural ("header lines", "lines with a user and no items"): one is a line.
        foreach (var (reason, count) in raw.Skipped.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            log.Add(Inv($"skipped {count:N0} {(count == 1 ? ReplaceFirst(reason, "lines", "line") : reason)} in {raw.Source}"));
    }

    private static void AddFinal(List<string> log, SplitDataset d)
    {
        long pairs = d.TrainCount + d.ValidCount + d.TestCount;
        double density = d.NumUsers == 0 || d.NumItems == 0 ? 0 : pairs / ((double)d.NumUsers * d.NumItems);
        log.Add(Inv($"final: {d.NumUsers:N0} users, {d.NumItems:N0} items, {pairs:N0} interactions (density {density:0.######})"));
    }

    private static string NameOf(DataOptions o)
    {
        if (o.Format == DataFormat.Synthetic)
        {
            var s = o.Synthetic;
            return Inv($"synthetic-u{s.Users}-i{s.Items}-seed{s.Seed}");
        }
        string full = System.IO.Path.GetFullPath(o.Path!).TrimEnd(System.IO.Path.DirectorySeparatorChar);
        if (o.Format == DataFormat.Split)
            return System.IO.Path.GetFileName(full);
        string? parent = System.IO.Path.GetFileName(System.IO.Path.GetDirectoryName(full));
        string file = System.IO.Path.GetFileName(full);
        return string.IsNullOrEmpty(parent) ? file : $"{parent}/{file}";
    }

    private static int CountUsers(List<RawInteraction> rows) => rows.Select(r => r.User).Distinct(StringComparer.Ordinal).Count();
    private static int CountItems(List<RawInteraction> rows) => rows.Select(r => r.Item).Distinct(StringComparer.Ordinal).Count();

    private static string Inv(FormattableString s) => FormattableString.Invariant(s);
}
