#!/usr/bin/env bash
# The packages as a new user gets them (docs/packages.md), checked outside the repository:
#   1. `dotnet pack` makes RecDistill, RecDistill.Serving and the tool RecDistill.Cli (a pointer package plus
#      RecDistill.Cli.linux-x64), all with the version of build/Packaging.props; the library depends on
#      TorchSharp but on no libtorch, carries the GLIBCXX fix as buildTransitive targets, and Serving has no
#      TorchSharp; the tool carries natives for linux-x64 only.
#   2. `dotnet tool install --tool-path` from the folder: `recdistill --version`, a two-epoch demo, a chart
#      (Skia) and an export, all from the installed tool.
#   3. A fresh console app that references only RecDistill.Serving loads that export and prints
#      recommendations, with no libtorch or TorchSharp file in its output.
#   4. A fresh console app that references RecDistill and libtorch-cpu-linux-x64 trains a tiny model
#      (libtorch loads on Debian 12 through the package's GLIBCXX fix).
# Usage: build/check-packages.sh   (from anywhere; it packs the checkout it is in)
# Packages restored by the check go to a cache of its own, so an earlier package of the same version is
# never picked up; the downloads come from NuGet's HTTP cache where the repository's restore left them.
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

fail() { echo "check-packages: $*" >&2; exit 1; }

version=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' build/Packaging.props | head -n 1)
[ -n "$version" ] || fail "no <Version> in build/Packaging.props"
libtorch_version=$(sed -n 's:.*<LibTorchCpuVersion>\(.*\)</LibTorchCpuVersion>.*:\1:p' build/LibTorch.targets | head -n 1)
[ -n "$libtorch_version" ] || fail "no <LibTorchCpuVersion> in build/LibTorch.targets"

work=$(mktemp -d /tmp/recdistill-packages.XXXXXX)
trap 'rm -rf "$work"' EXIT
feed="$work/feed"
start=$SECONDS

# 1. Pack: four packages of the one version.
dotnet pack RecDistill.sln -c Release -o "$feed" >"$work/pack.log" 2>&1 || { cat "$work/pack.log"; fail "dotnet pack failed"; }
for id in RecDistill RecDistill.Serving RecDistill.Cli RecDistill.Cli.linux-x64; do
  [ -f "$feed/$id.$version.nupkg" ] || fail "missing $id.$version.nupkg in: $(ls "$feed")"
  printf '  %-26s %11s bytes\n' "$id" "$(stat -c %s "$feed/$id.$version.nupkg")"
done
[ "$(ls "$feed" | wc -l)" -eq 4 ] || fail "unexpected packages: $(ls "$feed")"
echo "  packed ($((SECONDS - start)) s)"

# The packages are looked into where NuGet unpacks them (no unzip needed): the metadata every one has.
check_nuspec() {
  local nuspec=$1 field
  [ -f "$nuspec" ] || fail "no $nuspec"
  for field in '<license type="expression">MIT</license>' '<readme>README.md</readme>' '<repository type="git"' '<description>' '<tags>'; do
    grep -qF "$field" "$nuspec" || fail "$(basename "$nuspec"): no $field"
  done
  [ -f "$(dirname "$nuspec")/readme.md" ] || [ -f "$(dirname "$nuspec")/README.md" ] || fail "$(basename "$nuspec"): no README in the package"
}

# From here on, restores use a package cache of their own.
export NUGET_PACKAGES="$work/nuget-packages"
cat >"$work/nuget.config" <<EOF
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <add key="recdistill-check" value="$feed" />
  </packageSources>
</configuration>
EOF

# 2. The tool, installed from the folder.
dotnet tool install --tool-path "$work/tools" --add-source "$feed" RecDistill.Cli --version "$version" >"$work/install.log" 2>&1 \
  || { cat "$work/install.log"; fail "dotnet tool install failed"; }
store="$work/tools/.store/recdistill.cli/$version"
check_nuspec "$store/recdistill.cli/$version/RecDistill.Cli.nuspec"
rid_package="$store/recdistill.cli.linux-x64/$version"
[ -d "$rid_package" ] || fail "the install did not pick RecDistill.Cli.linux-x64"
other=$(cd "$rid_package" && find . -path '*/runtimes/*' -o -name '*.dylib' -o -name 'lib*Sharp.dll' -o -name 'LibTorchSharp.dll' -o -name 'libtorch_python.so')
[ -z "$other" ] || fail "the tool carries natives it cannot use on linux-x64: $(echo $other | head -c 300)"
[ -f "$rid_package/tools/net10.0/linux-x64/libSkiaSharp.so" ] || fail "the tool has no linux-x64 Skia"
recdistill="$work/tools/recdistill"
printed=$("$recdistill" --version)
echo "  installed tool: $printed"
[[ "$printed" =~ ^recdistill\ ${version//./\\.}\ \(commit\ [0-9a-f]{7,12}\)$ ]] || fail "recdistill --version printed '$printed', expected $version and a commit"
"$recdistill" demo --epochs 2 --out "$work/demo" >"$work/demo.log" 2>&1 || { tail -n 30 "$work/demo.log"; fail "demo from the installed tool failed"; }
test -s "$work/demo/mkd/metrics.json" || fail "the demo wrote no MKD run"
"$recdistill" compare --synthetic-users 300 --synthetic-items 400 --teacher-dim 16 --student-dim 4 --epochs 2 --seeds 1 \
  --methods scratch --out "$work/compare" >"$work/compare.log" 2>&1 || { tail -n 30 "$work/compare.log"; fail "compare from the installed tool failed"; }
test -s "$work/compare/ndcg20.png" || fail "the installed tool drew no chart"
"$recdistill" export --model "$work/demo/mkd" --out "$work/student.rdm" >"$work/export.log" 2>&1 || { cat "$work/export.log"; fail "export failed"; }
echo "  installed tool: --version, demo --epochs 2, a chart and export ran ($((SECONDS - start)) s)"

# A fresh console app in $work/NAME (outside the repository, so none of its build files apply) that
# references the packages given as ID@VERSION; the caller writes its Program.cs.
new_app() {
  local name=$1 ref references=""
  shift
  for ref in "$@"; do references+="    <PackageReference Include=\"${ref%@*}\" Version=\"${ref#*@}\" />"$'\n'; done
  app="$work/$name"
  mkdir -p "$app"
  cp "$work/nuget.config" "$app/"
  cat >"$app/$name.csproj" <<EOF
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <OutputType>Exe</OutputType>
    <TargetFramework>net10.0</TargetFramework>
    <ImplicitUsings>enable</ImplicitUsings>
    <Nullable>enable</Nullable>
  </PropertyGroup>
  <ItemGroup>
$references  </ItemGroup>
</Project>
EOF
}

# 3. A console app with RecDistill.Serving only.
new_app serving-app "RecDistill.Serving@$version"
cat >"$app/Program.cs" <<'EOF'
using RecDistill.Serving;

var recommender = Recommender.Load(args[0]);
var user = recommender.Model.UserIds[0];
foreach (var r in recommender.Recommend(user, k: 5))
    Console.WriteLine($"user {user}: item {r.ItemId} score {r.Score:F4}");
EOF
dotnet build "$app" -c Release -o "$app/out" >"$work/serving-app.log" 2>&1 || { cat "$work/serving-app.log"; fail "the Serving console app did not build"; }
recs=$(dotnet "$app/out/serving-app.dll" "$work/student.rdm")
echo "$recs" | sed 's/^/  serving app: /'
[ "$(echo "$recs" | grep -c '^user .*: item .* score ')" -eq 5 ] || fail "the Serving console app printed no 5 recommendations"
torch_files=$(find "$app/out" -iname '*torch*')
[ -z "$torch_files" ] || fail "the Serving console app's output holds libtorch or TorchSharp files: $(echo $torch_files | head -c 300)"
package="$NUGET_PACKAGES/recdistill.serving/$version"
check_nuspec "$package/recdistill.serving.nuspec"
if grep -qiE 'id="[^"]*torch' "$package/recdistill.serving.nuspec"; then fail "RecDistill.Serving depends on TorchSharp or libtorch"; fi
[ -f "$package/lib/net10.0/RecDistill.Serving.xml" ] || fail "RecDistill.Serving has no XML documentation"
echo "  serving app: no libtorch or TorchSharp file in its output ($((SECONDS - start)) s)"

# 4. A console app with RecDistill and the CPU libtorch: training runs on this machine.
new_app library-app "RecDistill@$version" "libtorch-cpu-linux-x64@$libtorch_version"
cat >"$app/Program.cs" <<'EOF'
using RecDistill.Data;
using RecDistill.Models;
using RecDistill.Runs;
using RecDistill.Training;

var data = new DataOptions { Format = DataFormat.Synthetic, Synthetic = new SyntheticOptions { Users = 200, Items = 300, Seed = 1 } };
var train = new TrainOptions { MaxEpochs = 2, EvalEvery = 1, Seed = 1 };
var run = Workflow.Train(data, new ModelShape(Backbone.Bpr, 16), train, new RunOutput(args[0]));
Console.WriteLine($"trained {run.Parameters} parameters, test ndcg@20 {run.Test["ndcg@20"]:F4}");
EOF
dotnet build "$app" -c Release -o "$app/out" >"$work/library-app.log" 2>&1 || { cat "$work/library-app.log"; fail "the library console app did not build"; }
trained=$(dotnet "$app/out/library-app.dll" "$work/library-run" 2>&1) || { echo "$trained"; fail "the library console app did not run"; }
echo "  library app: $trained"
[[ "$trained" == *"test ndcg@20"* ]] || fail "the library console app trained nothing"
package="$NUGET_PACKAGES/recdistill/$version"
check_nuspec "$package/recdistill.nuspec"
grep -q 'id="TorchSharp"' "$package/recdistill.nuspec" || fail "RecDistill does not depend on TorchSharp"
if grep -qi 'id="libtorch' "$package/recdistill.nuspec"; then fail "RecDistill forces a libtorch package on its users"; fi
for f in buildTransitive/RecDistill.targets build/RecDistill.targets lib/net10.0/RecDistill.xml; do
  [ -f "$package/$f" ] || fail "RecDistill has no $f"
done

echo "packages checked in $((SECONDS - start)) s"
