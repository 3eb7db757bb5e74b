namespace RecDistill.Data;

/// <summary>Summary figures of a loaded dataset, for the <c>stats</c> command and logs.</summary>
public sealed record DatasetStatistics(
    string Name, int Users, int Items, long Pairs, long Train, long Valid, long Test, double Density,
    int MinPerUser, double MedianPerUser, int MaxPerUser, int ItemsWithoutTrain)
{
    /// <summary>Per-user figures count train + valid + test; density is pairs / (users * items).</summary>
    public static DatasetStatistics Compute(SplitDataset d)
    {
        int users = d.NumUsers, items = d.NumItems;
        var perUser = new int[users];
        for (int u = 0; u < users; u++)
            perUser[u] = d.Train[u].Length + d.Valid[u].Length + d.Test[u].Length;
        Array.Sort(perUser);
        long train = d.TrainCount, valid = d.ValidCount, test = d.TestCount, pairs = train + valid + test;
        double median = users == 0 ? 0
            : users % 2 == 1 ? perUser[users / 2]
            : (perUser[users / 2 - 1] + (double)perUser[users / 2]) / 2;
        var inTrain = new bool[items];
        foreach (var list in d.Train)
            foreach (int i in list) inTrain[i] = true;
        return new DatasetStatistics(d.Name, users, items, pairs, train, valid, test,
            users == 0 || items == 0 ? 0 : pairs / ((double)users * items),
            users == 0 ? 0 : perUser[0], median, users == 0 ? 0 : perUser[^1],
            inTrain.Count(x => !x));
    }

    /// <summary>Human-readable lines, culture-independent.</summary>
    public IReadOnlyList<string> ToLines() =>
    [
        Inv($"dataset:      {Name}"),
        Inv($"users:        {Users:N0}"),
        Inv($"items:        {Items:N0}"),
        Inv($"interactions: {Pairs:N0} (train {Train:N0}, valid {Valid:N0}, test {Test:N0})"),
        Inv($"density:      {Density:0.######} ({Density * 100:0.####}%)"),
        Inv($"per user:     min {MinPerUser:N0}, median {MedianPerUser:0.#}, max {MaxPerUser:N0}"),
        Inv($"items with no train interaction: {ItemsWithoutTrain:N0}"),
    ];

    private static string Inv(FormattableString s) => FormattableString.Invariant(s);
}
