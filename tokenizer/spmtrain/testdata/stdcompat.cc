// Reference for tokenizer/spmtrain/train_stdcompat.go: what libstdc++ (GCC 12, as
// SentencePiece 0.1.97 is built on Debian) does where the BPE trainer's
// output depends on it: std::unordered_map<uint64_t, T> iteration order
// under random inserts and erases, which elements std::partial_sort puts
// first among ties, and std::uniform_int_distribution<uint64_t> over
// std::mt19937. The operations come from splitmix64, which the Go test
// repeats. Regenerate stdcompat_reference.txt with:
//
//   g++ -O2 -o /tmp/stdcompat tokenizer/spmtrain/testdata/stdcompat.cc
//   (/tmp/stdcompat 1 200000 5000 1000; /tmp/stdcompat 7 50000 3000 1000;
//    /tmp/stdcompat 99 4000 1200 1000; /tmp/stdcompat 6000000) \
//     > tokenizer/spmtrain/testdata/stdcompat_reference.txt
#include <unordered_map>
#include <algorithm>
#include <random>
#include <vector>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
static uint64_t s;
static uint64_t next(){ uint64_t z=(s+=0x9e3779b97f4a7c15ULL); z=(z^(z>>30))*0xbf58476d1ce4e5b9ULL; z=(z^(z>>27))*0x94d049bb133111ebULL; return z^(z>>31);}
int main(int argc,char**argv){
  if(argc==2){ // bucket counts of an unordered_map grown one insertion at a time
    std::unordered_map<uint64_t,int> g; size_t last=g.bucket_count();
    for(uint64_t i=0;i<(uint64_t)atoll(argv[1]);i++){ g.emplace(i*7919u,0); if(g.bucket_count()!=last){last=g.bucket_count(); printf("growth %zu %zu\n",g.size(),last);} }
    return 0;
  }
  s=atoll(argv[1]); int nops=atoi(argv[2]);
  std::unordered_map<uint64_t,int> m; std::vector<uint64_t> keys;
  uint64_t h=1469598103934665603ULL;
  for(int i=0;i<nops;i++){
    uint64_t r=next();
    if(r%10<7 || keys.empty()){ uint64_t k = (r>>8)%3==0 ? (r>>20)%5000 : next(); if(m.emplace(k,i).second) keys.push_back(k); }
    else { size_t j=(r>>8)%keys.size(); m.erase(keys[j]); keys[j]=keys.back(); keys.pop_back(); }
    if(i%(nops/8)==nops/8-1){ for(auto&kv:m){ h=(h^kv.first)*1099511628211ULL; } printf("order %d %zu %zu %016llx\n",i,m.size(),m.bucket_count(),(unsigned long long)h); }
  }
  // partial_sort with many ties: values in [0,20), compare by value desc, print indices of the first k.
  std::vector<std::pair<int,int>> v; int n=atoi(argv[3]), k=atoi(argv[4]);
  for(int i=0;i<n;i++) v.push_back({(int)(next()%20), i});
  std::partial_sort(v.begin(), v.begin()+k, v.end(), [](const std::pair<int,int>&a,const std::pair<int,int>&b){return a.first>b.first;});
  std::vector<int> sel; for(int i=0;i<k;i++) sel.push_back(v[i].second); std::sort(sel.begin(),sel.end());
  uint64_t ph=1469598103934665603ULL; for(int x:sel) ph=(ph^(uint64_t)x)*1099511628211ULL; printf("psort %d %d %016llx\n",n,k,(unsigned long long)ph);
  // uniform_int_distribution<uint64_t>(0, t-1) over mt19937(12345678)
  std::mt19937 e(12345678); uint64_t uh=1469598103934665603ULL;
  for(uint64_t t=1;t<=20000;t++){ std::uniform_int_distribution<uint64_t> d(0,t-1); uint64_t x=d(e); uh=(uh^x)*1099511628211ULL; }
  std::uniform_int_distribution<uint64_t> big(0, 0x1FFFFFFFFULL); for(int i=0;i<100;i++){ uh=(uh^big(e))*1099511628211ULL; }
  std::uniform_int_distribution<uint64_t> full(0, 0xFFFFFFFFULL); for(int i=0;i<100;i++){ uh=(uh^full(e))*1099511628211ULL; }
  printf("uniform %016llx\n",(unsigned long long)uh);
}
