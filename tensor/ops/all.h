// Every op of the engine in one include, for programs and tests.
#pragma once

#include "tensor/autograd/grad_mode.h"
#include "tensor/ops/activation.h"
#include "tensor/ops/arithmetic.h"
#include "tensor/ops/batch_norm2d.h"
#include "tensor/ops/concat.h"
#include "tensor/ops/conv2d.h"
#include "tensor/ops/cross_entropy.h"
#include "tensor/ops/dropout.h"
#include "tensor/ops/exp_log.h"
#include "tensor/ops/log_softmax.h"
#include "tensor/ops/matmul.h"
#include "tensor/ops/pooling.h"
#include "tensor/ops/reduction.h"
#include "tensor/random.h"
#include "tensor/tensor.h"
