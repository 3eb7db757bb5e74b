using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using RecDistill.Data;
using static RecDistill.Tests.Serving.ServingCliTests;

namespace RecDistill.Tests.Serving;

/// <summary>A string-id CSV end to end through the CLI: the same run as its integer twin, then served by id, with unknown users and new ones.</summary>
public class StringIdCliTests
{
    [Fact]
    public void A_quoted_string_id_csv_trains_like_its_integer_twin_and_serves_by_id()
    {
        var root = TestData.TempDir();
        var raw = SyntheticDataGenerator.Generate(new SyntheticOptions { Users = 120, Items = 150, Seed = 5 });
        var ints = new StringBuilder("user,item\n");
        var strings = new StringBuilder("\uFEFF\"user_id\",\"item_id\"\r\n");
        foreach (var r in raw.Interactions)
        {
            ints.Append(CultureInfo.InvariantCulture, $"{r.User},{r.Item}\n");
            strings.Append(CultureInfo.InvariantCulture, $"\"U{int.Parse(r.User):D5}\",\"ART{int.Parse(r.Item):D6}\"\r\n");
        }
        string intCsv = Path.Combine(root, "ints.csv"), stringCsv = Path.Combine(root, "strings.csv");
        File.WriteAllText(intCsv, ints.ToString());
        File.WriteAllText(stringCsv, strings.ToString());
        string[] Train(string data, string dir) =>
            ["train", "--data", data, "--dim", "8", "--epochs", "3", "--eval-every", "1", "--lr", "0.01", "--threads", "1", "--seed", "9", "--out", dir];
        var (code, output) = Run(Train(intCsv, Path.Combine(root, "int-run")));
        Assert.True(code == 0, output);
        (code, output) = Run(Train(stringCsv, Path.Combine(root, "string-run")));
        Assert.True(code == 0, output);
        JsonNode Metrics(string run) => JsonNode.Parse(File.ReadAllText(Path.Combine(root, run, "metrics.json")))!;
        // Zero-padded ids keep the integers' dense order: the same seed gives the same numbers.
        foreach (var part in new[] { "valid", "test", "best_epoch" })
            Assert.Equal(Metrics("int-run")[part]!.ToJsonString(), Metrics("string-run")[part]!.ToJsonString());

        var model = Path.Combine(root, "strings.rdm");
        (code, output) = Run("export", "--model", Path.Combine(root, "string-run"), "--out", model);
        Assert.True(code == 0, output);
        var rec = RecDistill.Serving.Recommender.Load(model);
        Assert.Equal("U00000", rec.Model.UserIds[0]);
        (code, output) = Run("recommend", "--model", model, "--user", "U00017", "--k", "3");
        Assert.True(code == 0, output);
        Assert.Contains($" {rec.Recommend("U00017", 1)[0].ItemId} ", output);

        // A file of users, one of them unknown, one quoted: each --unknown mode.
        var users = Path.Combine(root, "users.txt");
        File.WriteAllText(users, "U00017\nNOBODY\n\"U00003\"\n");
        var (skipCode, skipped, skipErrors) = RunWithErrors("recommend", "--model", model, "--users", users, "--k", "4");
        Assert.Equal(0, skipCode);
        var rows = ParseCsv(skipped);
        Assert.Equal(new[] { "U00017", "U00003" }, rows.Select(r => r.User).Distinct());
        Assert.Equal(rec.Recommend("U00003", 4).Select(r => r.ItemId), rows.Where(r => r.User == "U00003").Select(r => r.Item));
        Assert.Contains("skipped 1 user(s) not in the model (the first: 'NOBODY', " + users + ":2)", skipErrors);
        var (_, popularOut, popularErrors) = RunWithErrors("recommend", "--model", model, "--users", users, "--k", "4", "--unknown", "popular");
        var popularRows = ParseCsv(popularOut);
        Assert.Equal(new[] { "U00017", "NOBODY", "U00003" }, popularRows.Select(r => r.User).Distinct());
        Assert.Equal(rec.Popular(4).Select(r => r.ItemId), popularRows.Where(r => r.User == "NOBODY").Select(r => r.Item));
        Assert.Contains("served the most popular items to 1 user(s)", popularErrors);
        var (errorCode, errorOut, errorErrors) = RunWithErrors("recommend", "--model", model, "--users", users, "--unknown", "error", "--out", Path.Combine(root, "no.csv"));
        Assert.Equal(2, errorCode);
        Assert.Contains("users.txt:2: user 'NOBODY' is not in the model", errorErrors); // on standard error, not in the output
        Assert.DoesNotContain("NOBODY", errorOut);
        Assert.False(File.Exists(Path.Combine(root, "no.csv")));

        // A new user from their items (fold-in), and item-to-item.
        var items = rec.Model.ItemIds.Take(3).ToList();
        var csv = Path.Combine(root, "new.csv");
        (code, output) = Run("recommend", "--model", model, "--items", string.Join(",", items), "--k", "5", "--out", csv);
        Assert.True(code == 0, output);
        var lines = File.ReadAllLines(csv);
        Assert.Equal("rank,item,score", lines[0]);
        Assert.Equal(rec.RecommendFromItems(items, 5).Select(r => r.ItemId), lines.Skip(1).Select(l => l.Split(',')[1]));
        // An item given twice is one item of the new user.
        (code, output) = Run("recommend", "--model", model, "--items", $"{items[0]},{items[0]}", "--k", "3");
        Assert.True(code == 0, output);
        Assert.Contains("a user of 1 item (folded in)", output);
        (code, output) = Run("similar", "--model", model, "--item", items[0], "--k", "4");
        Assert.True(code == 0, output);
        Assert.Contains($" {rec.Similar(items[0], 1)[0].ItemId} ", output);
    }

    [Fact]
    public void Column_choice_mistakes_stop_before_anything_is_read()
    {
        var root = TestData.TempDir();
        var csv = Path.Combine(root, "r.csv");
        File.WriteAllText(csv, "ts,item,user\n1,I1,U1\n");
        var users = Path.Combine(root, "users.dat");
        File.WriteAllText(users, "1 5\n");
        void Fails(string expected, params string[] args)
        {
            var (code, _, errors) = ServingCliTests.RunWithErrors(args);
            Assert.Equal(2, code);
            Assert.Contains(expected, errors);
        }
        Fails("--columns applies to csv data", "stats", "--data", users, "--columns", "1,2");
        Fails("--threshold keeps ratings at or above it, but --columns chooses no rating column", "stats", "--data", csv, "--columns", "1,2", "--threshold", "3");
        Fails("--columns: give 2 to 4 columns", "stats", "--data", csv, "--columns", "user");
        Fails("--columns names columns, which needs --header true", "stats", "--data", csv, "--columns", "user,item", "--header", "false");
        Fails("r.csv:1: no column named 'asin'", "stats", "--data", csv, "--columns", "user,asin");
        var (code, output) = Run("stats", "--data", csv, "--columns", "user,item,,ts", "--min-user", "1");
        Assert.True(code == 0, output);
    }
}
