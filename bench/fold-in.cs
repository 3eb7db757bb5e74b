// How well fold-in (POST /v1/recommendations/from-items) stands in for a trained user vector: for users of an
// exported model, fold in their own train items and compare the top-K with the model's answer for the user
// (train items left out of both). Reported per regularisation c (λ = c · trace(VᵀV) / d): mean top-K overlap.
// Usage: dotnet run -c Release bench/fold-in.cs -- MODEL.rdm [--users 1000] [--k 20] [--c 0.01,0.1,1,10]
#:project ../src/RecDistill.Serving.Http/RecDistill.Serving.Http.csproj
using System.Globalization;
using RecDistill.Serving;
using RecDistill.Serving.Http;

var inv = CultureInfo.InvariantCulture;
string? file = null;
int users = 1000, k = 20;
double[] cs = { 0.01, 0.1, 1, 10 };
for (int a = 0; a < args.Length; a++)
{
    if (args[a] == "--users") users = int.Parse(args[++a], inv);
    else if (args[a] == "--k") k = int.Parse(args[++a], inv);
    else if (args[a] == "--c") cs = args[++a].Split(',').Select(s => double.Parse(s, inv)).ToArray();
    else file = args[a];
}
if (file is null) { Console.Error.WriteLine("usage: fold-in.cs MODEL.rdm [--users N] [--k K] [--c LIST]"); return 2; }

var model = CompactModel.Load(file);
int step = Math.Max(1, model.NumUsers / users);
var sample = Enumerable.Range(0, model.NumUsers).Where(u => u % step == 0).Take(users).ToArray();
var itemIds = model.ItemRawIds.ToArray();
var userIds = model.UserRawIds.ToArray();
Console.WriteLine($"{file}: {model}; {sample.Length} users (every {step}th), top-{k}, train items left out of both lists");
Console.WriteLine("| c | mean top-k overlap with the trained user vector |");
Console.WriteLine("|---:|---:|");
foreach (var c in cs)
{
    using var adapter = ModelAdapter.Create(model, new ServingOptions { ModelPath = file, FoldInRegularization = c });
    double sum = 0;
    foreach (var u in sample)
    {
        var user = userIds[u].ToString(inv);
        var trained = adapter.Recommend(user, k).Select(r => r.Item).ToHashSet();
        var given = model.TrainItems(u).ToArray().Select(i => itemIds[i].ToString(inv)).ToArray();
        var folded = adapter.RecommendFromItems(given, k);
        sum += folded.Count(r => trained.Contains(r.Item)) / (double)Math.Max(1, trained.Count);
    }
    Console.WriteLine($"| {c.ToString(inv)} | {sum / sample.Length:F4} |");
}
return 0;
