#!/usr/bin/env bash
# JVM scenarios for booster's benchmarks: three pairs of real OCI images (old → new) made from
# Debian packages and the JDK's own jar tool, pushed with skopeo (plain http) as
# REGISTRY/bench/<repo>:old and :new.
#
#   bench/jvm-images.sh REGISTRY_HOSTPORT        # e.g. 127.0.0.1:5000; bench/run.sh calls it
#
#   jvm-tomcat  layer 1: JRE base: the files of openjdk-17-jre-headless, ca-certificates-java and
#                        java-common (dpkg-deb -x), plus /usr/bin/java; the same blob in all six
#                        images
#               layer 2: the files of libtomcat10-java 10.1.55-1~deb12u1 (bookworm) → 10.1.60-1~deb12u1
#                        (bookworm-security): versioned jars renamed, unversioned symlinks retargeted
#   jvm-fatjar  layer 2: /app/app.jar, a Spring-Boot-style fat jar made with `jar`: launcher class and
#                        BOOT-INF/classes (javac, deflated), BOOT-INF/lib/*.jar stored (Debian's
#                        guava, commons-lang3, commons-io, jackson-core, tomcat10-coyote). Old → new:
#                        tomcat10-coyote-10.1.55.jar → -10.1.60.jar, two app classes edited
#   jvm-trixie  layer 2: the files of libguava-java (TRIXIE_PKG) in bookworm (31.1-1) → trixie
#                        (32.0.1-1): the real jar and its symlink swap names across the release
#                        (bookworm: guava.jar is the file, guava-31.1-jre.jar → guava.jar; trixie:
#                        guava-32.0.1-jre.jar is the file, guava.jar → guava-32.0.1-jre.jar)
#
# Layers are written as Docker writes them: a tar in lexical walk order, every mtime 2024-01-01,
# owner 0:0, symlinks kept (bench/layer-tar.py), compressed with Go's compress/gzip as moby does
# (../shared/bench/encoders/gogzip, built here), media type application/vnd.oci.image.layer.v1.tar+gzip;
# OCI manifest and config with the diff_ids (bench/oci-layout.py). bookworm packages come through
# this machine's apt; the trixie one through a private apt configuration (trixie of the archive
# this machine's apt uses; nothing on the system changes). The jar tool's timestamps are fixed
# (jar --date), so a rebuild from the same packages gives the same digests.
#
# Idempotent: everything is cached under JVM_WORK (default /tmp/bench/jvm, about 1 GB): the
# downloads, extracted packages, layer tars and blobs are made once; a re-run re-pushes (skopeo
# skips what the registry has) and checks each pushed manifest digest against the layout's.
# Remove the directory (or one of its files) to rebuild. Overrides: TOMCAT_OLD, TOMCAT_NEW,
# TRIXIE_PKG, ARCHIVE (for the trixie apt), SHARED_BENCH.
#
# Also writes $JVM_WORK/baselines.txt, the peers on each scenario's changed layer (layer 2) tars:
# pull update (the blobs of the new image the old one lacks: layer 2 and the config, as booster
# diff counts it), `zstd -19 --long=27 --patch-from`,
# `xdelta3 -9 -B 1073741824`, and "unpacked": zstd -19 --long=27 --patch-from between both tars
# with every jar replaced by a directory of its members, recursively (bench/tar-unjar.py). Every
# delta is decoded and compared. Recomputed when a layer tar is newer than the file.
set -euo pipefail
shopt -s inherit_errexit
[ $# = 1 ] || { echo "usage: bench/jvm-images.sh REGISTRY_HOSTPORT" >&2; exit 2; }
REG=$1
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BENCH=$ROOT/bench
SHARED_BENCH=${SHARED_BENCH:-$ROOT/../shared/bench}
W=${JVM_WORK:-/tmp/bench/jvm}
TOMCAT_OLD=${TOMCAT_OLD:-10.1.55-1~deb12u1}
TOMCAT_NEW=${TOMCAT_NEW:-10.1.60-1~deb12u1}
TRIXIE_PKG=${TRIXIE_PKG:-libguava-java}
DATE=2024-01-01T00:00:00Z   # jar --date; layer-tar.py's mtime is the same instant
export TZ=UTC               # the zip's DOS times are local times
mkdir -p "$W"/debs/bookworm "$W"/debs/trixie "$W"/x "$W"/layers "$W"/bin
say() { echo "jvm-images: $*" >&2; }

# --- tools ---------------------------------------------------------------------------------
GOGZIP=$W/bin/gogzip
if [ ! -x "$GOGZIP" ]; then
  (cd "$SHARED_BENCH/encoders/gogzip" && GO111MODULE=off go build -o "$GOGZIP.tmp" .) && mv "$GOGZIP.tmp" "$GOGZIP"
fi

# --- packages --------------------------------------------------------------------------------
# The trixie apt: a private configuration; its lists are fetched once.
A=$W/apt
TRIXIE_APT=(-o Dir::Etc::SourceList="$A/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o Dir::State::Lists="$A/lists" -o Dir::Cache="$A/cache" -o Dir::State::status=/var/lib/dpkg/status
  -o APT::Get::List-Cleanup=0 -o Acquire::Languages=none)
trixie_lists() {
  ls "$A"/lists/*trixie*Packages* >/dev/null 2>&1 && return
  mkdir -p "$A"/lists/partial "$A"/cache/archives/partial
  ARCHIVE=${ARCHIVE:-$("$ROOT"/scripts/debian-archive.sh)}
  echo "deb $ARCHIVE trixie main" > "$A/sources.list"
  apt-get "${TRIXIE_APT[@]}" update >/dev/null
}
# fetch SUITE PKG [VERSION] → prints the .deb, downloaded once into $W/debs/SUITE. Without a
# VERSION: the candidate of that suite at the first run, then whatever .deb of PKG is cached.
fetch() {
  local suite=$1 pkg=$2 ver=${3:-} dir=$W/debs/$1 f spec
  f=$(find "$dir" -maxdepth 1 -name "${pkg}_${ver:-*}_*.deb" | sort | tail -1)
  if [ -z "$f" ]; then
    spec=$pkg${ver:+=$ver}
    if [ "$suite" = trixie ]; then
      trixie_lists
      (cd "$dir" && apt-get "${TRIXIE_APT[@]}" -o APT::Sandbox::User=root -qq download "$spec") >&2
    else
      (cd "$dir" && apt-get -o APT::Sandbox::User=root -qq download "$spec") >&2 || {
        say "cannot download $spec; put its .deb into $dir, or set the version (apt-cache madison $pkg)"; exit 1; }
    fi
    f=$(find "$dir" -maxdepth 1 -name "${pkg}_${ver:-*}_*.deb" | sort | tail -1)
    [ -n "$f" ] || { say "no .deb of $spec in $dir after apt-get download"; exit 1; }
  fi
  echo "$f"
}
# extract NAME DEB... → $W/x/NAME holds the files of the DEBs (dpkg-deb -x), made again only
# when the DEBs differ from the last time ($W/x/NAME.done names them). Everything made from a
# tree is made again when its .done is newer.
extract() {
  local name=$1 deb; shift
  [ "$(cat "$W/x/$name.done" 2>/dev/null)" = "$*" ] && return
  rm -rf "$W/x/$name"; mkdir -p "$W/x/$name"
  for deb in "$@"; do dpkg-deb -x "$deb" "$W/x/$name"; done
  echo "$*" > "$W/x/$name.done"
}
JRE_DEBS=()
for p in openjdk-17-jre-headless ca-certificates-java java-common; do JRE_DEBS+=("$(fetch bookworm $p)"); done
TC_OLD=$(fetch bookworm libtomcat10-java "$TOMCAT_OLD")
TC_NEW=$(fetch bookworm libtomcat10-java "$TOMCAT_NEW")
TX_OLD=$(fetch bookworm "$TRIXIE_PKG")
TX_NEW=$(fetch trixie "$TRIXIE_PKG")
LIB_DEBS=()
for p in libguava-java libcommons-lang3-java libcommons-io-java libjackson2-core-java; do LIB_DEBS+=("$(fetch bookworm $p)"); done
extract jre "${JRE_DEBS[@]}"
extract tomcat-old "$TC_OLD"
extract tomcat-new "$TC_NEW"
extract trixie-old "$TX_OLD"
extract trixie-new "$TX_NEW"
extract libs "${LIB_DEBS[@]}"
for d in "${JRE_DEBS[@]}" "$TC_OLD" "$TC_NEW" "$TX_OLD" "$TX_NEW" "${LIB_DEBS[@]}"; do
  echo "$(basename "$(dirname "$d")") $(dpkg-deb -f "$d" Package) $(dpkg-deb -f "$d" Version)"
done | awk '!seen[$0]++' > "$W/versions.txt"
# update-alternatives would make /usr/bin/java; dpkg-deb -x does not run it
JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64
[ -L "$W/x/jre/usr/bin/java" ] || { mkdir -p "$W/x/jre/usr/bin"; ln -s "$JAVA_HOME/bin/java" "$W/x/jre/usr/bin/java"; }

# --- the fat jar -----------------------------------------------------------------------------
# app_sources DIR VARIANT: the app's Java sources; new = old with two classes edited
app_sources() {
  local d=$1/com/example/demo version greeting body
  mkdir -p "$d" "$1/com/example/boot/loader"
  if [ "$2" = old ]; then
    version=1.4.2 greeting='Hello, %s!'
    body='return String.format(template, StringUtils.capitalize(StringUtils.trimToEmpty(name)));'
  else
    version=1.4.3 greeting='Hello, %s, welcome back!'
    body='String who = StringUtils.defaultIfBlank(StringUtils.normalizeSpace(name), "stranger");
        if (StringUtils.length(who) > 64) who = StringUtils.abbreviate(who, 64);
        return String.format(template, StringUtils.capitalize(who)) + " [" + DemoApplication.VERSION + "]";'
  fi
  cat > "$1/com/example/boot/loader/JarLauncher.java" <<'EOF'
package com.example.boot.loader;

import java.io.InputStream;
import java.net.URL;
import java.util.jar.Manifest;

/** Stand-in for Spring Boot's launcher: names the Start-Class the nested-jar loader would run. */
public final class JarLauncher {
    private JarLauncher() {}

    public static void main(String[] args) throws Exception {
        URL url = JarLauncher.class.getResource("/META-INF/MANIFEST.MF");
        try (InputStream in = url.openStream()) {
            Manifest m = new Manifest(in);
            String start = m.getMainAttributes().getValue("Start-Class");
            String lib = m.getMainAttributes().getValue("Spring-Boot-Lib");
            System.out.println("would launch " + start + " with the jars of " + lib);
        }
    }
}
EOF
  cat > "$d/DemoApplication.java" <<EOF
package com.example.demo;

import com.google.common.collect.ImmutableList;
import java.util.List;

public final class DemoApplication {
    public static final String VERSION = "$version";

    private DemoApplication() {}

    public static void main(String[] args) throws Exception {
        GreetingService greetings = new GreetingService("$greeting");
        GreetingController controller = new GreetingController(greetings, new OrderRepository());
        List<String> names = args.length > 0 ? ImmutableList.copyOf(args) : ImmutableList.of("world");
        for (String name : names) {
            System.out.println(controller.handle("/greet/" + name));
        }
        System.out.println(controller.handle("/orders"));
    }
}
EOF
  cat > "$d/GreetingService.java" <<EOF
package com.example.demo;

import org.apache.commons.lang3.StringUtils;

public class GreetingService {
    private final String template;

    public GreetingService(String template) {
        this.template = template;
    }

    public String greet(String name) {
        $body
    }
}
EOF
  cat > "$d/GreetingController.java" <<'EOF'
package com.example.demo;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import java.io.IOException;
import java.io.StringWriter;

public class GreetingController {
    private final JsonFactory json = new JsonFactory();
    private final GreetingService greetings;
    private final OrderRepository orders;

    public GreetingController(GreetingService greetings, OrderRepository orders) {
        this.greetings = greetings;
        this.orders = orders;
    }

    public String handle(String path) throws IOException {
        StringWriter out = new StringWriter();
        try (JsonGenerator g = json.createGenerator(out)) {
            g.writeStartObject();
            if (path.startsWith("/greet/")) {
                g.writeStringField("message", greetings.greet(path.substring(7)));
            } else if (path.equals("/orders")) {
                g.writeArrayFieldStart("orders");
                for (Order o : orders.findAll()) {
                    g.writeStartObject();
                    g.writeNumberField("id", o.id());
                    g.writeStringField("item", o.item());
                    g.writeNumberField("quantity", o.quantity());
                    g.writeEndObject();
                }
                g.writeEndArray();
            } else {
                g.writeNumberField("status", 404);
            }
            g.writeEndObject();
        }
        return out.toString();
    }
}
EOF
  cat > "$d/Order.java" <<'EOF'
package com.example.demo;

public record Order(long id, String item, int quantity) {}
EOF
  cat > "$d/OrderRepository.java" <<'EOF'
package com.example.demo;

import com.google.common.collect.ImmutableList;
import java.util.List;
import org.apache.commons.io.FilenameUtils;

public class OrderRepository {
    private final List<Order> orders = ImmutableList.of(
            new Order(1, FilenameUtils.getBaseName("/catalog/keyboard.json"), 2),
            new Order(2, FilenameUtils.getBaseName("/catalog/monitor.json"), 1));

    public List<Order> findAll() {
        return orders;
    }
}
EOF
}
# fatjar VARIANT TOMCAT_TREE: $W/x/fatjar-VARIANT/app/app.jar, made once
fatjar() {
  local v=$1 tc=$2 s=$W/fatjar/$1 out=$W/x/fatjar-$1 j srcs
  [ "$out.done" -nt "$tc.done" ] && [ "$out.done" -nt "$W/x/libs.done" ] && return
  rm -rf "$s" "$out"; mkdir -p "$s/boot/BOOT-INF/classes" "$s/boot/BOOT-INF/lib" "$s/loader" "$out/app"
  # Libraries as a build tool names them: artifact-version.jar
  for j in guava commons-lang3 commons-io jackson-core; do
    cp -L "$(find "$W/x/libs/usr/share/java" -name "$j-[0-9]*.jar" | sort | head -1)" "$s/boot/BOOT-INF/lib/"
  done
  cp -L "$(find "$tc/usr/share/java" -name 'tomcat10-coyote-[0-9]*.jar')" "$s/boot/BOOT-INF/lib/"
  app_sources "$s/src" "$v"
  mapfile -t srcs < <(find "$s/src/com/example/demo" -name '*.java' | sort)
  javac -nowarn --release 17 -encoding UTF-8 -cp "$(find "$s/boot/BOOT-INF/lib" -name '*.jar' | sort | paste -sd:)" \
    -d "$s/boot/BOOT-INF/classes" "${srcs[@]}"
  javac -nowarn --release 17 -encoding UTF-8 -d "$s/loader" "$s/src/com/example/boot/loader/JarLauncher.java"
  (cd "$s/boot" && find BOOT-INF/lib -name '*.jar' | sort | sed 's/.*/- "&"/') > "$s/boot/BOOT-INF/classpath.idx"
  cat > "$s/MANIFEST.MF" <<EOF
Manifest-Version: 1.0
Main-Class: com.example.boot.loader.JarLauncher
Start-Class: com.example.demo.DemoApplication
Implementation-Title: demo
Implementation-Version: $(grep -o '"[0-9.]*"' "$s/src/com/example/demo/DemoApplication.java" | tr -d '"')
Spring-Boot-Classes: BOOT-INF/classes/
Spring-Boot-Lib: BOOT-INF/lib/
Spring-Boot-Classpath-Index: BOOT-INF/classpath.idx
EOF
  # The launcher and the app's classes deflated (jar's default), then the libraries stored.
  jar --create --file "$s/app.jar" --manifest "$s/MANIFEST.MF" --date="$DATE" \
    -C "$s/loader" . -C "$s/boot" BOOT-INF/classes -C "$s/boot" BOOT-INF/classpath.idx
  jar --update --no-compress --file "$s/app.jar" --date="$DATE" -C "$s/boot" BOOT-INF/lib
  mv "$s/app.jar" "$out/app/app.jar"
  touch "$out.done"
}
fatjar old "$W/x/tomcat-old"
fatjar new "$W/x/tomcat-new"

# --- layers ----------------------------------------------------------------------------------
# layer NAME TREE: $W/layers/NAME.tar and NAME.tar.gz (gogzip), NAME.sums (diff_id, digest, sizes)
layer() {
  local t=$W/layers/$1.tar
  [ -s "$t.gz" ] && [ "$W/layers/$1.sums" -nt "$2.done" ] && return
  say "layer $1"
  python3 "$BENCH/layer-tar.py" "$2" "$t.tmp" && mv "$t.tmp" "$t"
  "$GOGZIP" -sums < "$t" > "$t.gz.tmp" 2> "$W/layers/$1.sums.tmp"
  mv "$t.gz.tmp" "$t.gz"; mv "$W/layers/$1.sums.tmp" "$W/layers/$1.sums"
}
layer jre "$W/x/jre"
for s in tomcat fatjar trixie; do
  for v in old new; do layer "$s-$v" "$W/x/$s-$v"; done
done

# --- images ----------------------------------------------------------------------------------
diff_id() { cut -d' ' -f1 "$W/layers/$1.sums"; }
ENV="\"Env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\",\"JAVA_HOME=$JAVA_HOME\"]"
for s in tomcat fatjar trixie; do
  case $s in
    tomcat) conf="{$ENV,\"Cmd\":[\"java\",\"-cp\",\"/usr/share/java/*\",\"org.apache.catalina.util.ServerInfo\"]}" ;;
    fatjar) conf="{$ENV,\"Entrypoint\":[\"java\",\"-jar\",\"/app/app.jar\"],\"WorkingDir\":\"/app\"}" ;;
    trixie) conf="{$ENV,\"Cmd\":[\"java\",\"-version\"]}" ;;
  esac
  for v in old new; do
    md=$(python3 "$BENCH/oci-layout.py" "$W/oci" "jvm-$s-$v" "$conf" \
      "$W/layers/jre.tar.gz" "$(diff_id jre)" "$W/layers/$s-$v.tar.gz" "$(diff_id "$s-$v")")
    skopeo copy -q --insecure-policy --dest-tls-verify=false "oci:$W/oci:jvm-$s-$v" "docker://$REG/bench/jvm-$s:$v"
    got=sha256:$(skopeo inspect --tls-verify=false --raw "docker://$REG/bench/jvm-$s:$v" | sha256sum | cut -d' ' -f1)
    [ "$got" = "$md" ] || { say "$REG/bench/jvm-$s:$v is $got, the layout says $md"; exit 1; }
    say "pushed $REG/bench/jvm-$s:$v $md"
  done
done

# --- peer baselines on the changed layer (layer 2) -------------------------------------------
OUT=$W/baselines.txt
stale=0
for f in "$W"/layers/*.tar; do [ "$f" -nt "$OUT" ] && stale=1; done
[ -e "$OUT" ] || stale=1
if [ "$stale" = 1 ]; then
  say "peer baselines"
  P=$W/peers; rm -rf "$P"; mkdir -p "$P"
  rows=$P/rows
  # zstd -19 prints its optimal parser notes even with -q: show its stderr only on failure
  zst() { zstd -q -f "$@" 2> "$P/zstd.err" || { cat "$P/zstd.err" >&2; return 1; }; }
  for s in tomcat fatjar trixie; do
    o=$W/layers/$s-old.tar n=$W/layers/$s-new.tar
    pull=$(python3 - "$W/oci" "jvm-$s" <<'EOF'
import json, sys
d, repo = sys.argv[1:]
def blobs(tag):
    e = next(e for e in json.load(open(f"{d}/index.json"))["manifests"]
             if e["annotations"]["org.opencontainers.image.ref.name"] == f"{repo}-{tag}")
    m = json.load(open(f"{d}/blobs/sha256/{e['digest'][7:]}"))
    return {b["digest"]: b["size"] for b in [m["config"]] + m["layers"]}
old, new = blobs("old"), blobs("new")
print(sum(size for dg, size in new.items() if dg not in old))
EOF
)
    zst -19 --long=27 --patch-from="$o" "$n" -o "$P/$s.zst"
    zst -d --long=27 --patch-from="$o" "$P/$s.zst" -o "$P/check"; cmp "$P/check" "$n"
    xdelta3 -q -f -9 -B 1073741824 -e -s "$o" "$n" "$P/$s.xd"
    xdelta3 -q -f -d -B 1073741824 -s "$o" "$P/$s.xd" "$P/check"; cmp "$P/check" "$n"
    python3 "$BENCH/tar-unjar.py" "$o" "$P/$s-old-unpacked.tar"
    python3 "$BENCH/tar-unjar.py" "$n" "$P/$s-new-unpacked.tar"
    zst -19 --long=27 --patch-from="$P/$s-old-unpacked.tar" "$P/$s-new-unpacked.tar" -o "$P/$s-unpacked.zst"
    zst -d --long=27 --patch-from="$P/$s-old-unpacked.tar" "$P/$s-unpacked.zst" -o "$P/check"
    cmp "$P/check" "$P/$s-new-unpacked.tar"
    echo "jvm-$s $(stat -c %s "$o") $(stat -c %s "$n") $(stat -c %s "$P/$s-new-unpacked.tar") $pull" \
      "$(stat -c %s "$P/$s.zst") $(stat -c %s "$P/$s.xd") $(stat -c %s "$P/$s-unpacked.zst")" >> "$rows"
    rm -f "$P"/check "$P"/*-unpacked.tar "$P"/zstd.err
  done
  python3 - "$rows" "$W/versions.txt" > "$OUT.tmp" <<'EOF'
import sys
rows = [l.split() for l in open(sys.argv[1])]
pct = lambda a, b: f"{int(a)} ({100 * int(a) / int(b):.2f} %)"
print("# Peers on the changed layer (layer 2) of the JVM scenarios, bytes (% of pull update)")
print("# pull update = the blobs of the new image the old one lacks: layer 2 (Go compress/gzip) and the config")
print("# zstd = zstd -19 --long=27 --patch-from=old.tar new.tar; xdelta3 = xdelta3 -9 -B 1073741824 -e -s old.tar new.tar")
print("# unpacked = zstd -19 --long=27 --patch-from between both tars with every jar a directory of its members (recursively)")
print("| scenario | old tar | new tar | new tar unpacked | pull update | zstd --patch-from | xdelta3 -9 | unpacked zstd --patch-from |")
print("|---|---|---|---|---|---|---|---|")
for name, ot, nt, nu, pull, z, x, u in rows:
    print(f"| {name} | {ot} | {nt} | {nu} | {pull} | {pct(z, pull)} | {pct(x, pull)} | {pct(u, pull)} |")
print()
print("# packages (suite package version)")
for l in open(sys.argv[2]):
    print("#   " + l.rstrip())
EOF
  mv "$OUT.tmp" "$OUT"
fi
cat "$OUT"
