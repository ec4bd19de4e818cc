// nerfdream: one binary, one subcommand per task. Bad input ends in one clear line on stderr and exit 2.
#include <cstdio>
#include <exception>

int main(int argc, char** argv) {
  std::fprintf(stderr, "nerfdream: not yet\n");
  return 1;
}
