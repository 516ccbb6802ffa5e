// simdjson_parse.cpp - the yardstick for bench/engine_limit.c: simdjson (Debian's
// libsimdjson-dev; the module never links it) parsing the same frames, in MB/s.
// Run by bench/run-engine-limit.
//
//   simdjson_parse FRAMES [passes]
//
// Modes, alternated pass by pass:
//   dom        dom::parser::parse of each frame: a whole document built and
//              validated, the fair counterpart of json.c's jv_parse
//   ondemand   ondemand::parser::iterate, then every key and value visited
//              (strings unescaped, numbers converted), so nothing is skipped
// Each frame sits in its own padded_string, built before timing: simdjson's
// best case (a socket's buffer would need the padding added, or a copy).
// Time is process CPU time; each mode prints the median of its passes.
#include <simdjson.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <string>
#include <vector>

using namespace simdjson;

static double cpu_now()
{
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void walk(ondemand::value v, size_t &n)
{
    switch (v.type()) {
    case ondemand::json_type::object:
        for (auto field : v.get_object()) {
            n += std::string_view(field.unescaped_key()).size();
            walk(field.value(), n);
        }
        break;
    case ondemand::json_type::array:
        for (auto item : v.get_array()) walk(item.value(), n);
        break;
    case ondemand::json_type::string: n += std::string_view(v.get_string()).size(); break;
    case ondemand::json_type::number: n += (size_t)(double(v.get_double()) != 0); break;
    case ondemand::json_type::boolean: n += bool(v.get_bool()); break;
    case ondemand::json_type::null: n += v.is_null(); break;
    }
}

static double median(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        std::fprintf(stderr, "usage: simdjson_parse FRAMES [passes]\n");
        return 1;
    }
    int passes = argc > 2 ? std::atoi(argv[2]) : 5;
    if (passes < 1) return 1;
    std::ifstream in(argv[1], std::ios::binary);
    if (!in) {
        std::fprintf(stderr, "simdjson_parse: cannot open %s (make bench-streams)\n", argv[1]);
        return 1;
    }
    std::vector<padded_string> frames;
    size_t bytes = 0;
    for (std::string line; std::getline(in, line);) {
        while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
        if (line.empty()) continue;
        bytes += line.size();
        frames.emplace_back(line);
    }
    if (frames.empty()) return 1;

    dom::parser dp;
    ondemand::parser op;
    std::vector<double> times[2];
    size_t sink = 0;
    try {
        for (int p = 0; p < passes; p++) {
            for (int m = 0; m < 2; m++) {
                int mode = (m + p) % 2;
                double t0 = cpu_now();
                if (mode == 0) {
                    for (const auto &f : frames) {
                        dom::element root = dp.parse(f); // throws on invalid JSON
                        sink += dom::object(root).size();
                    }
                } else {
                    for (const auto &f : frames) {
                        ondemand::document doc = op.iterate(f);
                        walk(doc.get_value(), sink);
                    }
                }
                times[mode].push_back(cpu_now() - t0);
            }
        }
    } catch (const std::exception &e) {
        std::fprintf(stderr, "simdjson_parse: %s\n", e.what());
        return 1;
    }
    if (!sink) return 1;
    const char *names[2] = {"dom", "ondemand"};
    // DOM dispatches at run time inside the library; ondemand is inlined from
    // the header, built for whatever the compiler targets (-march).
#define STR2(x) #x
#define STR(x) STR2(x)
    std::string impls[2] = {get_active_implementation()->name(), STR(SIMDJSON_BUILTIN_IMPLEMENTATION)};
    for (int m = 0; m < 2; m++) {
        double t = median(times[m]);
        std::printf("impl=simdjson mode=%s frames=%zu bytes=%zu passes=%d kernel=%s mb_per_s=%.1f "
                    "us_per_packet=%.3f\n",
                    names[m], frames.size(), bytes, passes, impls[m].c_str(),
                    (double)bytes / t / 1e6, t / (double)frames.size() * 1e6);
    }
    return 0;
}
