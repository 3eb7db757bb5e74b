// How well fold-in (POST /v1/recommendations/from-items, Recommender.FoldIn) stands in for a trained user
// vector: for users of an exported model, fold in their own train items and compare the service's top-K with
// its answer for the user (train items left out of both); the mean overlap, and the same for the most
// popular items as a floor.
// Usage: dotnet run -c Release bench/fold-in.cs -- MODEL.rdm [--users 1000] [--k 20]
#:project ../src/RecDistill.Serving.Http/RecDistill.Serving.Http.csproj
using System.Globalization;
using RecDistill.Serving;
using RecDistill.Serving.Http;

var inv = CultureInfo.InvariantCulture;
string? file = null;
int users = 1000, k = 20;
for (int a = 0; a < args.Length; a++)
{
    if (args[a] == "--users") users = int.Parse(args[++a], inv);
    else if (args[a] == "--k") k = int.Parse(args[++a], inv);
    else file = args[a];
}
if (file is null) { Console.Error.WriteLine("usage: fold-in.cs MODEL.rdm [--users N] [--k K]"); return 2; }

var model = CompactModel.Load(file);
int step = Math.Max(1, model.NumUsers / users);
var sample = Enumerable.Range(0, model.NumUsers).Where(u => u % step == 0).Take(users).ToArray();
Console.WriteLine($"{file}: {model}; {sample.Length} users (every {step}th), top-{k}, train items left out of all lists");
using var adapter = ModelAdapter.Create(model, new ServingOptions { ModelPath = file });
double folded = 0, popular = 0;
foreach (var u in sample)
{
    var user = model.UserIds[u];
    var trained = adapter.Recommend(user, k).Select(r => r.Item).ToHashSet();
    var given = model.TrainItems(u).ToArray().Select(i => model.ItemIds[i]).ToArray();
    var seen = given.ToHashSet();
    folded += adapter.RecommendFromItems(given, k).Count(r => trained.Contains(r.Item)) / (double)Math.Max(1, trained.Count);
    popular += adapter.Popular(k + given.Length).Where(r => !seen.Contains(r.Item)).Take(k).Count(r => trained.Contains(r.Item)) / (double)Math.Max(1, trained.Count);
}
Console.WriteLine($"mean top-{k} overlap with the trained user vector: fold-in {folded / sample.Length:F4}, most popular items {popular / sample.Length:F4}");
return 0;
