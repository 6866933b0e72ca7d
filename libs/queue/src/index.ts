export {
  createRedis,
  createTrainingQueue,
  enqueueTraining,
  TRAINING_ATTEMPTS,
  TRAINING_QUEUE,
  type QueuePayloads,
  type TrainingQueue,
} from './training-queue.js';
