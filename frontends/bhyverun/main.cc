#include "frontends/bhyverun/bhyverun.h"

int main(int argc, char** argv) { return strata::bhyverun::Main(argc, argv); }
