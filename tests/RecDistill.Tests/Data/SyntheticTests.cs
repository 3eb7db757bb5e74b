using RecDistill.Data;

namespace RecDistill.Tests.Data;

public class SyntheticTests
{
    [Fact]
    public void Deterministic_for_a_seed_and_different_across_seeds()
    {
        var o = new SyntheticOptions { Users = 200, Items = 300, Seed = 7 };
        var a = SyntheticDataGenerator.Generate(o).Interactions;
        var b = SyntheticDataGenerator.Generate(o).Interactions;
        var c = SyntheticDataGenerator.Generate(o with { Seed = 8 }).Interactions;
        Assert.Equal(a, b);
        Assert.NotEqual(a.Select(r => (r.User, r.Item)), c.Select(r => (r.User, r.Item)));
    }

    [Fact]
    public void Default_size_is_well_formed()
    {
        // Speed is a benchmark's business, not a unit test's: only the shape is checked here.
        var rows = SyntheticDataGenerator.Generate(new SyntheticOptions()).Interactions;
        var byUser = rows.GroupBy(r => r.User).ToList();
        Assert.Equal(1500, byUser.Count);
        Assert.All(byUser, g =>
        {
            var list = g.ToList();
            Assert.True(list.Count >= 5);
            Assert.Equal(list.Count, list.Select(r => r.Item).Distinct().Count());
            Assert.True(list.Zip(list.Skip(1)).All(p => p.First.Timestamp < p.Second.Timestamp));
        });
        double avg = rows.Count / 1500.0;
        Assert.InRange(avg, 26, 34);
        Assert.All(rows, r => Assert.InRange(int.Parse(r.Item), 0, 2499));
    }

    [Fact]
    public void Taste_dominates_popularity()
    {
        // Two users drawn from the same popularity but different tastes should share few items.
        var rows = SyntheticDataGenerator.Generate(new SyntheticOptions { Users = 300, Seed = 1 }).Interactions;
        var sets = rows.GroupBy(r => r.User).Select(g => g.Select(r => r.Item).ToHashSet()).ToList();
        double jaccard = 0; int pairs = 0;
        for (int a = 0; a < sets.Count; a += 3)
            for (int b = a + 1; b < sets.Count; b += 7, pairs++)
                jaccard += sets[a].Intersect(sets[b]).Count() / (double)sets[a].Union(sets[b]).Count();
        Assert.True(jaccard / pairs < 0.05, $"mean Jaccard {jaccard / pairs:F3}");
        var topShare = rows.GroupBy(r => r.Item).Select(g => g.Count()).OrderDescending().Take(25).Sum() / (double)rows.Count;
        Assert.True(topShare < 0.25, $"top 1% of items hold {topShare:P1}");
    }

    [Fact]
    public void Loads_through_the_pipeline_with_any_split()
    {
        foreach (var split in Enum.GetValues<SplitMethod>())
        {
            var d = DatasetLoader.Load(new DataOptions
            {
                Format = DataFormat.Synthetic, Path = "ignored", Split = split,
                Synthetic = new SyntheticOptions { Users = 100, Items = 200, Seed = 2 },
            });
            Assert.Equal(100, d.NumUsers);
            Assert.All(d.Train, t => Assert.NotEmpty(t));
            Assert.True(d.TestCount > 0);
        }
    }
}
